"""One error root per package: every public exception of ``models`` and ``gateway`` derives from it.

STYLE.md, habit 4. The roots came after the errors, so each error also keeps the base its callers
caught before (``except ValueError`` around a NEWS2 score, ``except RuntimeError`` around the broker):
those are pinned here too, so a re-parenting that would silently change what an ``except`` catches fails.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

from gateway.errors import GatewayFailure
from models.errors import ModelsError


def _modules(package: str) -> list[ModuleType]:
    root = importlib.import_module(package)
    names = [info.name for info in pkgutil.walk_packages(root.__path__, f"{package}.")]
    return [root, *(importlib.import_module(name) for name in names)]


def _public_exceptions(package: str) -> dict[str, type[BaseException]]:
    """Every exception class a module of ``package`` defines under a public name."""
    found: dict[str, type[BaseException]] = {}
    for module in _modules(package):
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found[f"{module.__name__}.{name}"] = value
    return found


@pytest.mark.parametrize(("package", "root"), [("models", ModelsError), ("gateway", GatewayFailure)])
def test_every_public_error_of_a_package_derives_from_its_root(
    package: str, root: type[BaseException]
) -> None:
    errors = _public_exceptions(package)
    assert len(errors) > 1, "the walk found the package's errors"
    strays = sorted(name for name, cls in errors.items() if not issubclass(cls, root))
    assert strays == [], f"not under {root.__name__}"


@pytest.mark.parametrize(
    ("qualified", "kept"),
    [
        ("models.news2.News2Error", ValueError),
        ("models.admission_risk.ModelError", ValueError),
        ("models.baselines.SeriesError", ValueError),
        ("models.cohort.synthetic.CohortError", ValueError),
        ("models.cohort_reader.CohortReadError", ValueError),
        ("gateway.broker.BrokerError", RuntimeError),
        ("gateway.errors.GatewayError", RuntimeError),
    ],
)
def test_errors_keep_the_base_their_callers_catch(qualified: str, kept: type[BaseException]) -> None:
    module, _, name = qualified.rpartition(".")
    assert issubclass(getattr(importlib.import_module(module), name), kept)
