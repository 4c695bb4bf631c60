// Live derived grades on the daily assessment form: POST the form's observations to the page's
// preview endpoint as the user types. The server grades them in the context of the subject's
// course (fever-masking windows, ongoing episode), so the panel shows what saving will store:
// the grades, "≥ 3 (oxygen device missing)" for an NE day with a proven floor, "masked by
// tocilizumab on 12 Mar", the reasons, the queries saving will raise, and field errors.
// A read-only form (monitor, data manager) has no preview URL: the saved grades stay shown.
(function () {
  "use strict";
  var form = document.getElementById("assessment-form");
  if (!form || !form.dataset.preview) return;
  var url = form.dataset.preview;
  var out = document.getElementById("grade-preview");
  var csrf = form.querySelector("[name=csrfmiddlewaretoken]");
  var skip = { csrfmiddlewaretoken: 1, version: 1, reason: 1, temperature: 1, temperature_unit: 1 };
  var LISTS = { vasopressors: 1, inotropes: 1 };
  var FLOW_DEVICES = ["nasal_cannula", "high_flow_nasal_cannula"];

  function el(name) { return form.elements.namedItem(name); }
  function show(name, visible) {
    var box = form.querySelector('[data-field="' + name + '"]');
    if (box) box.hidden = !visible;
  }
  function toggle() {
    var device = el("oxygen_device") ? el("oxygen_device").value : "none";
    show("oxygen_flow_l_min", FLOW_DEVICES.indexOf(device) >= 0);
    show("intubation_reason", device === "mechanical_ventilation");
    if (el("ice_score")) show("ice_not_assessable", el("ice_score").value === "");
  }
  function celsius() {
    var raw = el("temperature").value.trim();
    if (raw === "") return null;
    var value = Number(raw);
    if (isNaN(value)) return raw;  // let the server name the field
    if (el("temperature_unit").value === "F") {
      value = (value - 32) * 5 / 9;  // stored to 0.01 C rounding down, as the server does
      value = Math.floor(value * 100 + 1e-9) / 100;
    }
    return String(value);
  }
  function collect() {
    var data = {};
    Object.keys(LISTS).forEach(function (name) { data[name] = []; });
    Array.prototype.forEach.call(form.elements, function (input) {
      if (!input.name || skip[input.name] || input.type === "submit") return;
      var box = input.closest("[data-field]");
      if (box && box.hidden) return;
      if (LISTS[input.name]) { if (input.checked) data[input.name].push(input.value); return; }
      if (input.type === "checkbox") { data[input.name] = input.checked; return; }
      if (input.value !== "") data[input.name] = input.value;
    });
    var t = celsius();
    if (t !== null) data.temperature_max_c = t;
    return data;
  }
  function text(tag, content, cls) {
    var node = document.createElement(tag);
    node.textContent = content;
    if (cls) node.className = cls;
    return node;
  }
  function render(result) {
    out.replaceChildren();
    var p = document.createElement("p");
    var crs = text("strong", "CRS grade " + result.crs_text, "g" + result.crs_grade);
    var icans = text("strong", "ICANS grade " + result.icans_text, "g" + result.icans_grade);
    p.append(crs, " · ", icans, text("span", " (CTCAE v5.0 CRS " + result.ctcae_crs_grade + ")", "small muted"));
    out.append(p);
    if (result.masked_text) out.append(text("p", "Fever " + result.masked_text + " (R-CRS-2)", "masked"));
    if (result.flags.length) {
      out.append(text("p", "Will raise a query on saving: " + result.flags.join(", "), "small"));
    }
    var list = document.createElement("ul");
    result.reasons.forEach(function (r) { list.append(text("li", r, "small")); });
    out.append(list);
  }
  function clearErrors() {
    form.querySelectorAll(".live-error").forEach(function (e) { e.textContent = ""; });
  }
  var timer = null, seq = 0;
  function preview() {
    var mine = ++seq;
    fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.value : "" },
      body: JSON.stringify(collect()),
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (r) {
      if (mine !== seq) return;  // a newer keystroke answered first
      clearErrors();
      if (r.ok) { render(r.body); return; }
      out.replaceChildren(text("p", "Not graded yet: fix the fields marked in red.", "small"));
      Object.keys(r.body).forEach(function (field) {
        var slot = form.querySelector('[data-error-for="' + field + '"]');
        var message = [].concat(r.body[field]).join(" ");
        if (slot) slot.textContent = message; else out.append(text("p", field + ": " + message, "errorlist"));
      });
    }).catch(function () { /* offline: the server still grades on save */ });
  }
  function schedule() { toggle(); clearTimeout(timer); timer = setTimeout(preview, 200); }
  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
  toggle();
  preview();
})();
