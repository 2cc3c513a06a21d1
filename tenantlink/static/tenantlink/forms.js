// A form sent twice before its answer arrives (a double click, Enter pressed twice) sends its
// one-time code or its action twice. The browser keeps only the second answer: after a
// sign-in code, the first request signed the person in with a new session and the second,
// still under the old one, finds the sign-in gone, so the person is back at the start with
// the code used. The second press is ignored while the first is on its way; the form can be
// sent again when the page is shown again from the history, or after a minute without an answer
// (longer than the portal's slowest request, which waits on Microsoft: see gunicorn.conf.py).
"use strict";

document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.method.toLowerCase() !== "post") {
    return; // searches and exports change nothing
  }
  if (form.hasAttribute("data-sent")) {
    event.preventDefault();
    return;
  }
  form.setAttribute("data-sent", "");
  window.setTimeout(function () {
    form.removeAttribute("data-sent");
  }, 60000);
});

window.addEventListener("pageshow", function () {
  document.querySelectorAll("form[data-sent]").forEach(function (form) {
    form.removeAttribute("data-sent");
  });
});

// Choosing another language on the sign-in page loads the page again, empty: the username typed
// so far is kept in this tab for that one load (never the password) and put back, and the
// password field is then where typing goes on.
var KEPT_USERNAME = "tenantlink.username";

document.addEventListener("submit", function (event) {
  var username = document.querySelector('input[name="username"]:not([type="hidden"])');
  if (event.target.classList.contains("languages") && username && username.value) {
    try {
      window.sessionStorage.setItem(KEPT_USERNAME, username.value);
    } catch (error) {
      // storage refused (a private window, a policy): the page comes back empty, as without script
    }
  }
});

(function () {
  var kept = null;
  try {
    kept = window.sessionStorage.getItem(KEPT_USERNAME);
    window.sessionStorage.removeItem(KEPT_USERNAME);
  } catch (error) {
    return;
  }
  var username = document.querySelector('input[name="username"]:not([type="hidden"])');
  var password = document.querySelector('input[name="password"]');
  if (kept && username) {  // also over one the address filled in (?username= after an invitation)
    username.value = kept;
    if (password) {
      password.focus();
    }
  }
})();

// On a phone the navigation is one row that scrolls sideways: it starts at the current page's
// link, not at the first, so that the reader sees where they are.
(function () {
  var current = document.querySelector('.topbar nav [aria-current="page"]');
  var navigation = current && current.parentElement;
  if (navigation && navigation.scrollWidth > navigation.clientWidth) {
    navigation.scrollLeft = current.offsetLeft - navigation.offsetLeft - 16;
  }
})();
