/* Live alerts for a signed-in nurse or GP: the pages work without this script; with it, they follow
   GET /alerts/stream (server-sent events, gateway/api/alert_stream.py) without a reload.

   - Every page: the header badge (#alert-count) shows the count each "count" message brings.
   - The alert inbox (#alert-list): when an alert event comes, the page is fetched again and its list and
     tab counts replace the ones shown (a note being typed is kept; while the focus is in the list, the
     refresh waits until it leaves). A new or worse alert is announced in the polite live region
     (#alert-live): "Ny alarm: <patient>".
   - The words come from the page (data-new-alert, data-new-alert-unnamed on #alert-live: translated by
     the server), never from this file. The browser reconnects by itself and resumes from the last event
     id it got (Last-Event-ID); an event seen twice is handled once. #alert-live's data-live says whether
     the stream is open ("on") or reconnecting ("off"). */
(function () {
  "use strict";

  var live = document.getElementById("alert-live");
  if (!live || !window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  var REFRESH_DELAY_MS = 250; // a burst of events (one alert writes several) becomes one refresh
  var NEWS = { "raised": true, "severity-raised": true };
  var handled = {};
  var announceIds = [];
  var timer = null;
  var waitingForFocus = false;

  function setCount(count) {
    var badge = document.getElementById("alert-count");
    if (badge) {
      badge.textContent = String(count);
      badge.setAttribute("data-count", String(count));
    }
  }

  function announce(names) {
    var text;
    if (names.length) {
      text = live.getAttribute("data-new-alert").replace("%(patient)s", names.join(", "));
    } else {
      text = live.getAttribute("data-new-alert-unnamed");
    }
    var notice = document.createElement("p");
    notice.className = "alert alert-warning";
    notice.textContent = text;
    live.replaceChildren(notice);
  }

  function patientName(list, alertId) {
    var row = list.querySelector('.alert-row[data-alert-id="' + alertId + '"]');
    var link = row && row.querySelector('.alert-head a[href^="/patients/"]');
    return link ? link.textContent.trim() : null;
  }

  function keepTypedText(oldList, newList) {
    oldList.querySelectorAll("textarea[id], input[type=text][id]").forEach(function (field) {
      var twin = newList.querySelector("#" + CSS.escape(field.id));
      if (twin && field.value) {
        twin.value = field.value;
      }
    });
  }

  function replaceTabCounts(fetched) {
    document.querySelectorAll(".alert-tabs a[data-tab]").forEach(function (tab) {
      var twin = fetched.querySelector('.alert-tabs a[data-tab="' + tab.getAttribute("data-tab") + '"]');
      if (twin) {
        tab.innerHTML = twin.innerHTML;
      }
    });
  }

  function replaceEmptyNote(fetched, list) {
    var shown = document.querySelector(".alert-list-empty");
    var wanted = fetched.querySelector(".alert-list-empty");
    if (shown && !wanted) {
      shown.remove();
    } else if (wanted && !shown) {
      list.after(document.importNode(wanted, true));
    }
  }

  function refreshList() {
    timer = null;
    var list = document.getElementById("alert-list");
    if (!list) {
      return;
    }
    if (list.contains(document.activeElement)) {
      // Never pull the list from under a keyboard or a note being written: wait till the focus leaves.
      if (!waitingForFocus) {
        waitingForFocus = true;
        list.addEventListener("focusout", function onLeave(event) {
          if (!list.contains(event.relatedTarget)) {
            list.removeEventListener("focusout", onLeave);
            waitingForFocus = false;
            schedule();
          }
        });
      }
      return;
    }
    var ids = announceIds;
    announceIds = [];
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("the inbox answered " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var fetched = new DOMParser().parseFromString(html, "text/html");
        var fresh = fetched.getElementById("alert-list");
        var current = document.getElementById("alert-list");
        if (!fresh || !current) {
          return;
        }
        var adopted = document.importNode(fresh, true);
        keepTypedText(current, adopted);
        current.replaceWith(adopted);
        replaceTabCounts(fetched);
        replaceEmptyNote(fetched, adopted);
        var badge = fetched.getElementById("alert-count");
        if (badge) {
          setCount(badge.textContent.trim());
        }
        if (ids.length) {
          var names = [];
          ids.forEach(function (alertId) {
            var name = patientName(adopted, alertId);
            if (name && names.indexOf(name) < 0) {
              names.push(name);
            }
          });
          announce(names);
        }
      })
      .catch(function () {
        announceIds = ids.concat(announceIds); // told next time; the page itself still works
      });
  }

  function schedule() {
    if (timer === null) {
      timer = window.setTimeout(refreshList, REFRESH_DELAY_MS);
    }
  }

  var source = new EventSource(live.getAttribute("data-stream"));
  source.addEventListener("count", function (event) {
    live.setAttribute("data-live", "on"); // the stream is open and caught up
    setCount(JSON.parse(event.data).open);
  });
  source.addEventListener("error", function () {
    live.setAttribute("data-live", "off"); // the browser reconnects by itself
  });
  source.addEventListener("alert", function (event) {
    var data = JSON.parse(event.data);
    if (handled[data.event_id]) {
      return;
    }
    handled[data.event_id] = true;
    var news = NEWS[data.action] === true;
    if (document.getElementById("alert-list")) {
      if (news && announceIds.indexOf(data.alert_id) < 0) {
        announceIds.push(data.alert_id);
      }
      schedule();
    } else if (news) {
      announce([]);
    }
  });
})();
