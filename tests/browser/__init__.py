"""Browser tests: the real gateway under uvicorn, driven by Debian's Chromium through Playwright.

A package (unlike the other test folders) so that its one browser is package-scoped: started for the
first browser test and closed after the last, before any other test runs (``conftest.py`` says why).
"""
