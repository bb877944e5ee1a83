// The page's live views: preview, hold-to-compare, histogram, 1:1 loupe and the "outdated" marker.
// Gradio calls studio.edit/render/release from JS-only events with the current values of
// [token, ...LIVE_FIELDS, seed]; previews come from POST /studio/preview (studio/live.py) as JPEG
// bytes. One request is in flight at a time and the newest settings always go next, so a drag
// never queues stale frames and the final position always renders.
window.studio = (() => {
  const FIELDS = __LIVE_FIELDS__;
  const ROUTE = new URL("studio/preview", document.baseURI).href;
  const $ = (selector) => document.querySelector(selector);
  let latest = null;            // {token, settings, seed} of the newest edit
  let inflight = false, again = false, sentKey = null;
  let beforeUrl = null, beforeToken = null, holding = false;
  let loupeAt = null, fullSize = null;
  let processingKey = null, processedKey = null, secondImage = 0;  // bumped per new dissolve image
  const shown = [];             // {t, key} of every preview shown (read by the benchmark and tests)

  const keyOf = (state) => JSON.stringify([state.token, secondImage, state.settings, state.seed]);

  function parse(values) {
    const settings = {};
    FIELDS.forEach((name, i) => { settings[name] = values[i + 1]; });
    return {token: values[0] || "", settings, seed: values[FIELDS.length + 1] ?? null};
  }

  function status(text, isError) {
    const line = $("#preview-status");
    if (!line) return;
    line.textContent = text || "";
    line.classList.toggle("error", Boolean(isError));
  }

  async function post(body) {
    const response = await fetch(ROUTE, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    if (!response.ok) {
      const problem = await response.json().catch(() => ({detail: response.statusText}));
      throw new Error(problem.detail || `HTTP ${response.status}`);
    }
    return response;
  }

  // Decodes off the main thread, then swaps the element: the visible image never flashes empty.
  async function showPreview(blob, state) {
    const url = URL.createObjectURL(blob);
    const next = new Image();
    next.src = url;
    await next.decode();
    const current = $("#preview img");
    if (!current) { URL.revokeObjectURL(url); return; }
    next.className = "studio-preview-img";
    next.alt = "Live preview";
    next.dataset.final = current.dataset.final = "";
    if (holding && beforeUrl) { next.dataset.after = url; next.src = beforeUrl; }
    const old = current.dataset.after || current.src;
    current.replaceWith(next);
    if (old && old.startsWith("blob:") && old !== beforeUrl) URL.revokeObjectURL(old);
    shown.push({t: performance.now(), key: keyOf(state)});
    $("#preview").classList.add("has-image");
    placeLoupeMark();
  }

  async function pump() {
    if (inflight) { again = true; return; }
    inflight = true;
    try {
      do {
        again = false;
        const state = latest;
        if (!state || !state.token || keyOf(state) === sentKey) break;  // nothing new to render
        sentKey = keyOf(state);
        try {
          const response = await post({...state, view: "preview"});
          const size = response.headers.get("X-Full-Size");
          fullSize = size ? size.split("x").map(Number) : null;
          drawHistogram(JSON.parse(response.headers.get("X-Histogram") || "null"));
          await showPreview(await response.blob(), state);
          status("");
        } catch (err) {
          sentKey = null;  // the same settings may be tried again
          status(err.message, true);
        }
      } while (again);
    } finally {
      inflight = false;
    }
  }

  function render(values, enableName) {
    latest = parse(values);
    if (enableName) latest.settings[enableName] = true;  // moving a control enables its effect
    if (!latest.token) {
      $("#preview")?.classList.remove("has-image");
      status("");
    }
    markOutdated();
    pump();
  }

  // -- before/after on the preview: hold the button (or the B key) to see the unprocessed proxy --
  async function hold(on) {
    holding = on;
    const img = $("#preview img");
    $("#preview")?.classList.toggle("holding", on);
    if (!img || !latest || !latest.token) return;
    if (on) {
      if (beforeToken !== latest.token) {
        const response = await post({...latest, view: "before"});
        if (beforeUrl) URL.revokeObjectURL(beforeUrl);
        beforeUrl = URL.createObjectURL(await response.blob());
        beforeToken = latest.token;
      }
      if (!holding) return;  // released while the before image was loading
      img.dataset.after = img.dataset.after || img.src;
      img.src = beforeUrl;
    } else if (img.dataset.after) {
      img.src = img.dataset.after;
      delete img.dataset.after;
    }
  }

  // -- histogram: luma filled, red/green/blue lines, clipping marks ---------------------------
  function drawHistogram(h) {
    const canvas = $("#histogram");
    const note = $("#clipping");
    if (!canvas || !h) return;
    const ctx = canvas.getContext("2d");
    const {width, height} = canvas;
    ctx.clearRect(0, 0, width, height);
    const bins = h.luma.length;
    const inner = (c) => c.slice(1, -1);  // the end bins hold clipped pixels: marked, not scaled to
    const peak = Math.max(1, ...inner(h.luma), ...inner(h.r), ...inner(h.g), ...inner(h.b));
    const y = (count) => height - Math.min(1, count / peak) * (height - 2);
    const x = (i) => (i + 0.5) * width / bins;
    ctx.fillStyle = "rgba(128,128,128,0.45)";
    ctx.beginPath();
    ctx.moveTo(0, height);
    h.luma.forEach((count, i) => ctx.lineTo(x(i), y(count)));
    ctx.lineTo(width, height);
    ctx.fill();
    for (const [channel, colour] of [["r", "#e5484d"], ["g", "#30a46c"], ["b", "#3e63dd"]]) {
      ctx.strokeStyle = colour;
      ctx.beginPath();
      h[channel].forEach((count, i) => (i ? ctx.lineTo(x(i), y(count)) : ctx.moveTo(x(i), y(count))));
      ctx.stroke();
    }
    const percent = (share) => `${(100 * share).toFixed(share < 0.01 ? 2 : 1)}%`;
    const marks = [];
    ctx.fillStyle = "#e5484d";
    if (h.clip_low > 0.001) {
      ctx.fillRect(0, 0, 4, height);
      marks.push(`shadows ${percent(h.clip_low)}`);
    }
    if (h.clip_high > 0.001) {
      ctx.fillRect(width - 4, 0, 4, height);
      marks.push(`highlights ${percent(h.clip_high)}`);
    }
    canvas.dataset.clipLow = h.clip_low;
    canvas.dataset.clipHigh = h.clip_high;
    note.textContent = marks.length ? `Clipped: ${marks.join(" · ")}` : "No clipping";
    note.classList.toggle("clipped", marks.length > 0);
  }

  // -- 1:1 loupe: click the preview to choose the spot; rendered from the full-resolution source --
  async function loupe(at) {
    if (at) loupeAt = at;
    if (!loupeAt || !latest || !latest.token) return;
    const frame = $("#loupe");
    const img = $("#loupe img");
    frame?.classList.add("busy");
    $("#loupe-status").textContent = "Rendering at full resolution…";
    try {
      const response = await post({...latest, view: "loupe", at: loupeAt});
      const url = URL.createObjectURL(await response.blob());
      const old = img.src;
      img.src = url;
      await img.decode();
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      frame.classList.add("has-image");
      $("#loupe-status").textContent =
        "100% crop of the full-resolution result; click the preview to move it.";
    } catch (err) {
      $("#loupe-status").textContent = err.message;
    } finally {
      frame?.classList.remove("busy");
    }
    placeLoupeMark();
  }

  function placeLoupeMark() {
    const img = $("#preview img");
    const mark = $("#loupe-mark");
    if (!mark || !img || !loupeAt || !fullSize) return;
    const [w, h] = [img.clientWidth, img.clientHeight];
    const side = __LOUPE_SIDE__ / fullSize[0] * w, sideY = __LOUPE_SIDE__ / fullSize[1] * h;
    mark.style.width = `${Math.min(w, side)}px`;
    mark.style.height = `${Math.min(h, sideY)}px`;
    mark.style.left = `${img.offsetLeft + Math.min(Math.max(loupeAt[0] * w - side / 2, 0), w - side)}px`;
    mark.style.top = `${img.offsetTop + Math.min(Math.max(loupeAt[1] * h - sideY / 2, 0), h - sideY)}px`;
    mark.hidden = false;
  }

  // -- "outdated": the result and before/after no longer match the settings or image ------------
  function markOutdated() {
    const outdated = Boolean(processedKey && latest && keyOf(latest) !== processedKey);
    // A data attribute on the column: Svelte re-renders class attributes, never this.
    const column = $("#live-column");
    if (column) column.toggleAttribute("data-outdated", outdated);
  }

  document.addEventListener("click", (event) => {
    const img = event.target.closest && event.target.closest("#preview img");
    if (!img || holding) return;
    const box = img.getBoundingClientRect();
    loupe([Math.min(1, Math.max(0, (event.clientX - box.left) / box.width)),
           Math.min(1, Math.max(0, (event.clientY - box.top) / box.height))]);
  });
  document.addEventListener("pointerdown", (event) => {
    if (event.target.closest && event.target.closest("#hold-before")) hold(true);
  }, true);
  for (const type of ["pointerup", "pointercancel"]) {
    document.addEventListener(type, () => { if (holding) hold(false); }, true);
  }
  document.addEventListener("keydown", (event) => {
    if (event.key === "b" && !event.repeat && !/INPUT|TEXTAREA/.test(event.target.tagName)) hold(true);
  });
  document.addEventListener("keyup", (event) => { if (event.key === "b" && holding) hold(false); });

  return {
    shown,
    edit: (values, enableName) => { render(values, enableName); return enableName ? true : []; },
    render: (...values) => { render(values); return []; },
    // A new second dissolve image: the settings are the same, the picture is not.
    refresh: (...values) => { secondImage += 1; render(values); return []; },
    release: (...values) => { render(values); if (loupeAt) loupe(); return []; },
    // The values Process runs with are the page's truth (e.g. the seed emptied by the page's load
    // event after a first preview): the preview follows them too.
    processing: (...values) => {
      latest = parse(values);
      processingKey = keyOf(latest);
      processedKey = null;
      markOutdated();
      pump();
      return [];
    },
    processed: () => { processedKey = processingKey; markOutdated(); return []; },
    // An enabled effect's accordion is marked by a data attribute (style.css draws the ●).
    mark: (key, on) => { $(`#effect-${key}`)?.toggleAttribute("data-enabled", Boolean(on)); return []; },
    state: () => latest,
    // The preview on screen shows the newest settings (tests and the benchmark wait for this).
    settled: () => Boolean(latest && !inflight && shown.length
                           && shown[shown.length - 1].key === keyOf(latest)),
  };
})();
