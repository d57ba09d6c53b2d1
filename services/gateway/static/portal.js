// Progressive enhancement only: every form works without this file.
(function () {
  "use strict";

  function human(bytes) {
    return (bytes / (1024 * 1024)).toFixed(0) + " MiB";
  }

  function checkFiles(zone, input) {
    var maxFile = Number(zone.dataset.maxFile), maxTotal = Number(zone.dataset.maxTotal);
    var problem = zone.querySelector(".problem"), total = 0, message = "";
    Array.prototype.forEach.call(input.files, function (f) {
      total += f.size;
      if (!message && f.size > maxFile) {
        message = zone.dataset.tooBig + " " + f.name + " > " + human(maxFile);
      }
    });
    if (!message && total > maxTotal) {
      message = zone.dataset.tooMuch + " " + human(maxTotal);
    }
    problem.textContent = message;
    input.setCustomValidity(message);
    return !message;
  }

  function setUp(zone) {
    var input = zone.querySelector("input[type=file]");
    if (!input) { return; }
    input.addEventListener("change", function () { checkFiles(zone, input); });
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (e) {
      e.preventDefault();
      if (!e.dataTransfer || !e.dataTransfer.files.length) { return; }
      var all = new DataTransfer();
      Array.prototype.forEach.call(input.files, function (f) { all.items.add(f); });
      Array.prototype.forEach.call(e.dataTransfer.files, function (f) { all.items.add(f); });
      input.files = all.files;
      checkFiles(zone, input);
    });
  }

  function onceOnly(form) {
    form.addEventListener("submit", function (e) {
      if (form.dataset.sent) { e.preventDefault(); return; }
      form.dataset.sent = "1";
      Array.prototype.forEach.call(form.querySelectorAll("button[data-once]"), function (b) {
        b.setAttribute("aria-disabled", "true");
      });
    });
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-dropzone]"), setUp);
    Array.prototype.forEach.call(document.querySelectorAll("form"), function (form) {
      if (form.querySelector("button[data-once]")) { onceOnly(form); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
