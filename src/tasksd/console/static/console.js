// tasksd console: confirmation of destructive actions and auto-refresh of a page's #live part.
// No framework and no network beyond this server: the page itself is fetched again and its
// #live element swapped in, so the server renders everything (the chart too).
"use strict";

function bindConfirmations(root) {
  root.querySelectorAll("form[data-confirm]").forEach(function (form) {
    if (form.dataset.bound) return;
    form.dataset.bound = "1";
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
}

function refreshing() {
  var box = document.getElementById("auto-refresh");
  return box !== null && box.checked;
}

function busy() {
  // Never swap the page while a form in it is being filled in.
  var active = document.activeElement;
  return active !== null && active.closest && active.closest("#live form") !== null &&
    active.tagName !== "BUTTON";
}

function refresh() {
  if (!refreshing() || document.visibilityState !== "visible" || busy()) return;
  fetch(window.location.href, { credentials: "same-origin", headers: { "X-Console-Refresh": "1" } })
    .then(function (response) {
      if (response.redirected && new URL(response.url).pathname !== window.location.pathname) {
        window.location.href = response.url;  // signed out, or the resource moved
        return null;
      }
      return response.text().then(function (text) { return { status: response.status, text: text }; });
    })
    .then(function (reply) {
      if (reply === null) return;
      var fresh = new DOMParser().parseFromString(reply.text, "text/html");
      var live = document.getElementById("live");
      var next = fresh.getElementById("live");
      if (live !== null && next !== null) {
        live.replaceWith(next);
        bindConfirmations(next);
      } else if (live !== null) {
        // The resource is gone (404) or the page shows an error: show it whole.
        var main = fresh.querySelector("main");
        if (main !== null) document.querySelector("main").replaceWith(main);
      }
      var stamp = document.getElementById("refreshed");
      if (stamp !== null) stamp.textContent = "refreshed " + new Date().toLocaleTimeString();
    })
    .catch(function () { /* the server is away: try again at the next tick */ });
}

document.addEventListener("DOMContentLoaded", function () {
  bindConfirmations(document);
  if (document.getElementById("auto-refresh") !== null) window.setInterval(refresh, 5000);
});
