// Trawl dashboard. Plain DOM, no build step. Page content (titles, URLs, errors,
// markdown) is untrusted: it is only ever set as text, except the markdown preview,
// which markdown-it renders with raw HTML disabled and DOMPurify then sanitises.
"use strict";

(() => {
  const KEY_STORAGE = "trawl.apiKey";
  const FINAL = new Set(["completed", "failed", "cancelled"]);
  const PAGE_SIZE = 25;
  const $ = (id) => document.getElementById(id);

  // -- tiny DOM helpers ------------------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === undefined || value === null) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function show(id, visible) { $(id).hidden = !visible; }

  function fmtDuration(seconds) {
    if (seconds === null || !isFinite(seconds)) return "–";
    seconds = Math.max(0, Math.round(seconds));
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
    if (m) return `${m}m ${String(s).padStart(2, "0")}s`;
    return `${s}s`;
  }

  function fmtTime(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    const today = new Date().toDateString() === d.toDateString();
    return today ? d.toLocaleTimeString() : d.toLocaleString();
  }

  function fmtRate(rate) { return rate === null ? "–" : rate >= 10 ? rate.toFixed(0) : rate.toFixed(1); }

  function plural(n, word) { return `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`; }

  function done(stats) { return stats.pages_fetched + stats.pages_failed + stats.pages_skipped; }

  function elapsed(job) {
    if (!job.started_at) return null;
    const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
    return Math.max(0, (end - Date.parse(job.started_at)) / 1000);
  }

  function rate(job) {
    const seconds = elapsed(job);
    if (!seconds) return null;
    return done(job.stats) / seconds;
  }

  function seedUrl(job) { return ((job.request && job.request.urls) || [""])[0]; }

  // -- API -------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, problem) {
      super(problem.detail || problem.title || `HTTP ${status}`);
      this.status = status;
      this.problem = problem;
    }
  }

  function authHeaders(extra) {
    const headers = Object.assign({ Accept: "application/json" }, extra || {});
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (key) headers.Authorization = `Bearer ${key}`;
    return headers;
  }

  async function api(method, path, body) {
    const init = { method, headers: authHeaders(), cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      needKey("That key was not accepted.");
      throw new ApiError(401, { detail: "API key required" });
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  // A form's failed submit: each problem+json field on its own line (a 401 has already
  // brought up the key form, so it says nothing here).
  function showFormError(error, failure) {
    if (failure instanceof ApiError && failure.status === 401) return;
    const fields = (failure.problem && failure.problem.errors) || [];
    error.textContent = fields.length
      ? fields.map((f) => `${f.field}: ${f.message}`).join("\n")
      : failure.message;
    error.hidden = false;
  }

  // Server-Sent Events over fetch (EventSource cannot send an Authorization header).
  // Reconnects with Last-Event-ID until the server ends the stream after final states.
  function stream(path, onJob, isDone) {
    const controller = new AbortController();
    let lastId = null;
    let retry = 2000;
    const run = async () => {
      while (!controller.signal.aborted) {
        try {
          const headers = authHeaders({ Accept: "text/event-stream" });
          if (lastId) headers["Last-Event-ID"] = lastId;
          const response = await fetch(path, { headers, signal: controller.signal, cache: "no-store" });
          if (response.status === 401) { needKey("That key was not accepted."); return; }
          if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
          setLive(true);
          const reader = response.body.getReader();
          const decoder = new TextDecoder();
          let buffer = "", event = "message", data = [];
          for (;;) {
            const { value, done: ended } = await reader.read();
            if (ended) break;
            buffer += decoder.decode(value, { stream: true });
            let newline;
            while ((newline = buffer.indexOf("\n")) >= 0) {
              const line = buffer.slice(0, newline).replace(/\r$/, "");
              buffer = buffer.slice(newline + 1);
              if (line === "") {
                if (data.length && event === "job") onJob(JSON.parse(data.join("\n")));
                event = "message"; data = [];
              } else if (!line.startsWith(":")) {
                const colon = line.indexOf(":");
                const field = colon < 0 ? line : line.slice(0, colon);
                const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
                if (field === "data") data.push(val);
                else if (field === "event") event = val;
                else if (field === "id") lastId = val;
                else if (field === "retry" && /^\d+$/.test(val)) retry = Number(val);
              }
            }
          }
          if (isDone()) return;
        } catch (error) {
          if (controller.signal.aborted) return;
        }
        setLive(false);
        await new Promise((resolve) => setTimeout(resolve, retry));
      }
    };
    run().finally(() => setLive(false));
    return () => controller.abort();
  }

  function setLive(on) { $("live-dot").classList.toggle("on", on); }

  // -- key gate --------------------------------------------------------------------------

  let keyWanted = false;

  function needKey(message) {
    keyWanted = true;
    stopAll();
    for (const id of ["jobs-view", "job-view", "schedules-view"]) show(id, false);
    show("key-gate", true);
    const error = $("key-error");
    error.textContent = message || "";
    error.hidden = !message || !sessionStorage.getItem(KEY_STORAGE);
    sessionStorage.removeItem(KEY_STORAGE);
    $("sign-out").hidden = true;
    $("key-form").elements.key.focus();
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = event.target.elements.key.value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORAGE, key);
    event.target.reset();
    keyWanted = false;
    show("key-gate", false);
    $("sign-out").hidden = false;
    route();
  });

  $("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    needKey("");
  });

  // -- jobs list -------------------------------------------------------------------------

  const list = { jobs: new Map(), order: [], cursor: null, stop: null, watched: "", timer: null, expanded: false };

  function stopAll() {
    if (list.stop) list.stop();
    list.stop = null;
    list.watched = "";
    if (list.timer) clearInterval(list.timer);
    list.timer = null;
    if (view.stop) view.stop();
    view.stop = null;
    if (schedules.timer) clearInterval(schedules.timer);
    schedules.timer = null;
  }

  async function loadJobs(more) {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (more && list.cursor) params.set("cursor", list.cursor);
    const page = await api("GET", `/v1/jobs?${params}`);
    if (!more) { list.jobs.clear(); list.order = []; }
    for (const job of page.items) {
      if (!list.jobs.has(job.id)) list.order.push(job.id);
      list.jobs.set(job.id, job);
    }
    list.cursor = page.next_cursor;
    renderJobs();
    watchActive();
  }

  function jobRow(job) {
    const total = Math.max(1, job.stats.pages_discovered);
    const bar = el("progress", { max: String(total), value: String(done(job.stats)), class: job.status });
    const url = seedUrl(job);
    return el(
      "tr",
      { "data-job": job.id, onclick: () => { location.hash = `#/jobs/${encodeURIComponent(job.id)}`; } },
      el("td", { title: url }, el("a", { href: `#/jobs/${encodeURIComponent(job.id)}`, text: url })),
      el("td", {}, el("span", { class: `badge ${job.status}`, text: job.status })),
      el("td", {}, el("div", { class: "progress-cell" }, bar,
        el("span", { text: `${done(job.stats)} / ${job.stats.pages_discovered}` }))),
      el("td", { class: "num", text: fmtRate(rate(job)) }),
      el("td", { text: fmtTime(job.started_at || job.created_at) }),
      el("td", { class: "num", text: fmtDuration(elapsed(job)) }),
    );
  }

  function renderJobs() {
    const body = $("jobs-body");
    body.replaceChildren(...list.order.map((id) => jobRow(list.jobs.get(id))));
    show("jobs-empty", list.order.length === 0);
    show("jobs-more", Boolean(list.cursor));
    let running = 0, queued = 0, fetched = 0, now = 0;
    for (const job of list.jobs.values()) {
      if (job.status === "running") { running += 1; now += rate(job) || 0; }
      if (job.status === "queued") queued += 1;
      fetched += job.stats.pages_fetched;
    }
    $("total-running").textContent = running;
    $("total-queued").textContent = queued;
    $("total-fetched").textContent = fetched.toLocaleString();
    $("total-rate").textContent = fmtRate(now);
  }

  function watchActive() {
    const active = list.order.filter((id) => !FINAL.has(list.jobs.get(id).status)).slice(0, 100);
    const key = active.join(",");
    if (key === list.watched) return;
    if (list.stop) list.stop();
    list.stop = null;
    list.watched = key;
    if (!active.length) return;
    const query = active.map((id) => `job=${encodeURIComponent(id)}`).join("&");
    list.stop = stream(`/v1/events?${query}`, (job) => {
      if (!list.jobs.has(job.id)) return;
      list.jobs.set(job.id, job);
      renderJobs();
    }, () => active.every((id) => FINAL.has(list.jobs.get(id).status)));
  }

  $("jobs-more").addEventListener("click", () => {
    list.expanded = true; // keep older pages: the periodic refresh reloads the first only
    loadJobs(true).catch(report("submit-error"));
  });

  function report(target) {
    return (error) => {
      if (error instanceof ApiError && error.status === 401) return;
      const box = $(target);
      box.textContent = error.message || String(error);
      box.hidden = false;
    };
  }

  // -- submit form -----------------------------------------------------------------------

  $("submit-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const error = $("submit-error");
    error.hidden = true;
    const body = {
      url: form.elements.url.value.trim(),
      max_depth: Number(form.elements.max_depth.value || 0),
      max_pages: Number(form.elements.max_pages.value || 100),
      scope: form.elements.scope.value,
      formats: [...form.querySelectorAll("input[name=formats]:checked")].map((box) => box.value),
      only_main_content: form.elements.only_main_content.checked,
    };
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const job = await api("POST", "/v1/jobs", body);
      form.elements.url.value = "";
      location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
    } catch (failure) {
      showFormError(error, failure);
    } finally {
      button.disabled = false;
    }
  });

  // -- job view --------------------------------------------------------------------------

  const view = { id: null, job: null, stop: null, cursors: [null], index: 0, samples: [], next: null, selected: null };

  function renderJob(job) {
    view.job = job;
    $("job-title").textContent = seedUrl(job);
    $("job-id").textContent = job.id;
    const started = job.started_at ? `started ${fmtTime(job.started_at)}` : `created ${fmtTime(job.created_at)}`;
    const took = elapsed(job) === null ? "" : ` · ${fmtDuration(elapsed(job))}`;
    $("job-times").textContent = started + took;
    const badge = $("job-status");
    badge.textContent = job.status;
    badge.className = `badge ${job.status}`;
    const bar = $("job-progress");
    bar.max = Math.max(1, job.stats.pages_discovered);
    bar.value = done(job.stats);
    bar.className = job.status;
    $("job-cancel").hidden = FINAL.has(job.status);
    const s = job.stats;
    const items = [
      ["Discovered", s.pages_discovered], ["Fetched", s.pages_fetched], ["Failed", s.pages_failed],
      ["Skipped", s.pages_skipped], ["Queued", s.pages_queued], ["Pages/s", fmtRate(rate(job))],
      ["Duration", fmtDuration(elapsed(job))],
    ];
    if (s.changes) {
      // A recrawl: its pages counted by change against the previous job.
      items.push(["New", s.changes.new], ["Changed", s.changes.changed],
        ["Unchanged", s.changes.unchanged], ["Removed", s.changes.removed]);
    }
    $("job-stats").replaceChildren(...items.map(([label, value]) =>
      el("div", {}, el("dt", { text: label }), el("dd", { text: String(value) }))));
    const error = $("job-error");
    error.hidden = !job.error;
    error.textContent = job.error ? `${job.error.code || "error"}: ${job.error.message || ""}` : "";
  }

  function drawChart(points, note) {
    const svg = $("chart");
    const NS = "http://www.w3.org/2000/svg";
    svg.replaceChildren();
    $("chart-note").textContent = note || "";
    for (const y of [40, 80, 120]) {
      const line = document.createElementNS(NS, "line");
      for (const [k, v] of Object.entries({ x1: 0, x2: 600, y1: y, y2: y, class: "grid-line" })) line.setAttribute(k, v);
      svg.append(line);
    }
    if (points.length < 2) {
      $("chart-start").textContent = "";
      $("chart-end").textContent = points.length ? "" : "no pages yet";
      return;
    }
    const t0 = points[0][0], t1 = Math.max(points[points.length - 1][0], t0 + 1);
    const top = Math.max(1, points[points.length - 1][1]);
    const xy = points.map(([t, n]) => [((t - t0) / (t1 - t0)) * 600, 155 - (n / top) * 145]);
    const path = xy.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
    const area = document.createElementNS(NS, "path");
    area.setAttribute("d", `${path} L600,160 L0,160 Z`);
    area.setAttribute("class", "area");
    const line = document.createElementNS(NS, "path");
    line.setAttribute("d", path);
    line.setAttribute("class", "line");
    svg.append(area, line);
    $("chart-start").textContent = new Date(t0).toLocaleTimeString();
    $("chart-end").textContent = `${plural(top, "page")} · ${new Date(t1).toLocaleTimeString()}`;
  }

  function liveSample(job) {
    const t = Date.now();
    if (!view.samples.length && job.started_at) view.samples.push([Date.parse(job.started_at), 0]);
    view.samples.push([job.finished_at ? Date.parse(job.finished_at) : t, done(job.stats)]);
    drawChart(view.samples, "live");
  }

  async function historyChart(job) {
    // A finished job: its pages' fetch times (the first 1000 results).
    const page = await api("GET", `/v1/jobs/${encodeURIComponent(job.id)}/results?limit=1000`);
    const times = page.items.map((item) => Date.parse(item.fetched_at)).filter(isFinite).sort((a, b) => a - b);
    const points = [];
    const start = job.started_at ? Date.parse(job.started_at) : times[0];
    if (start !== undefined) points.push([start, 0]);
    times.forEach((t, i) => points.push([t, i + 1]));
    const count = plural(times.length, "page");
    const note = page.next_cursor ? `first ${count}` : count;
    drawChart(points, note);
  }

  function resultRow(page) {
    const status = page.error ? "failed" : page.status_code;
    return el(
      "tr",
      { onclick: (event) => selectResult(page, event.currentTarget) },
      el("td", { title: page.url, text: page.url }),
      el("td", { class: "num" }, page.error
        ? el("span", { class: "badge failed", text: page.status_code || "error" })
        : el("span", { class: "badge ok", text: String(status ?? "") })),
      el("td", { title: page.title || "", text: page.title || "" }),
      el("td", { title: page.error ? page.error.message : "", text: page.error ? page.error.code : "" }),
    );
  }

  async function loadResults() {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    const cursor = view.cursors[view.index];
    if (cursor) params.set("cursor", cursor);
    const outcome = $("outcome").value;
    if (outcome) params.set("outcome", outcome);
    const page = await api("GET", `/v1/jobs/${encodeURIComponent(view.id)}/results?${params}`);
    $("results-body").replaceChildren(...page.items.map(resultRow));
    show("results-empty", page.items.length === 0);
    view.next = page.items.length === PAGE_SIZE ? page.next_cursor : null;
    $("results-prev").disabled = view.index === 0;
    $("results-next").disabled = !view.next;
    $("results-page").textContent = `page ${view.index + 1}`;
    if (!view.selected && page.items.length) selectResult(page.items[0], $("results-body").firstChild);
  }

  const markdown = window.markdownit ? window.markdownit({ html: false, linkify: false }) : null;
  if (markdown) {
    // Images would be fetched from the page's site: show a reference instead.
    markdown.renderer.rules.image = (tokens, idx) =>
      `<span class="image-ref">[image: ${markdown.utils.escapeHtml(tokens[idx].content || "")}]</span>`;
  }
  if (window.DOMPurify) {
    window.DOMPurify.addHook("afterSanitizeAttributes", (node) => {
      if (node.tagName === "A") {
        node.setAttribute("rel", "noopener noreferrer nofollow");
        node.setAttribute("target", "_blank");
      }
    });
  }

  function selectResult(page, row) {
    view.selected = page.url;
    for (const other of $("results-body").children) other.classList.toggle("selected", other === row);
    $("preview-url").textContent = page.url;
    const box = $("preview");
    if (page.markdown && markdown && window.DOMPurify) {
      const fragment = window.DOMPurify.sanitize(markdown.render(page.markdown), {
        RETURN_DOM_FRAGMENT: true,
        FORBID_TAGS: ["img", "style", "form", "input", "button", "iframe", "video", "audio", "picture", "source"],
        FORBID_ATTR: ["style", "srcset"],
      });
      box.replaceChildren(fragment);
    } else if (page.text) {
      box.replaceChildren(el("p", { class: "muted small", text: "No markdown requested; the page's text:" }),
        el("div", { class: "plain", text: page.text }));
    } else if (page.error) {
      box.replaceChildren(el("p", { text: `${page.error.code}: ${page.error.message}` }));
    } else {
      box.replaceChildren(el("p", { class: "muted", text: "Nothing to preview: request the markdown or text format." }));
    }
  }

  $("outcome").addEventListener("change", () => {
    view.cursors = [null]; view.index = 0; view.selected = null;
    loadResults().catch(report("job-error"));
  });
  $("results-next").addEventListener("click", () => {
    if (!view.next) return;
    view.cursors = view.cursors.slice(0, view.index + 1).concat([view.next]);
    view.index += 1;
    loadResults().catch(report("job-error"));
  });
  $("results-prev").addEventListener("click", () => {
    if (view.index === 0) return;
    view.index -= 1;
    loadResults().catch(report("job-error"));
  });

  $("job-cancel").addEventListener("click", async () => {
    if (!view.id) return;
    $("job-cancel").disabled = true;
    try { renderJob(await api("DELETE", `/v1/jobs/${encodeURIComponent(view.id)}`)); }
    catch (error) { report("job-error")(error); }
    finally { $("job-cancel").disabled = false; }
  });

  $("job-download").addEventListener("click", async () => {
    if (!view.id) return;
    // fetch, not a plain link: the API key travels in a header, never in a URL.
    const response = await fetch(`/v1/jobs/${encodeURIComponent(view.id)}/results.ndjson`, { headers: authHeaders() });
    if (!response.ok) { report("job-error")(new Error(`download failed: HTTP ${response.status}`)); return; }
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: `trawl-${view.id}.ndjson` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });

  async function openJob(id) {
    Object.assign(view, { id, job: null, cursors: [null], index: 0, samples: [], next: null, selected: null });
    $("preview").replaceChildren(el("p", { class: "muted", text: "Select a result to preview its markdown." }));
    $("preview-url").textContent = "";
    $("results-body").replaceChildren();
    $("job-error").hidden = true;
    $("outcome").value = "";
    drawChart([], "");
    const job = await api("GET", `/v1/jobs/${encodeURIComponent(id)}`);
    if (view.id !== id) return;
    renderJob(job);
    await loadResults();
    if (FINAL.has(job.status)) {
      await historyChart(job);
      return;
    }
    liveSample(job);
    let lastDone = -1;
    view.stop = stream(`/v1/jobs/${encodeURIComponent(id)}/events`, (update) => {
      if (view.id !== id) return;
      renderJob(update);
      if (FINAL.has(update.status)) historyChart(update).catch(() => liveSample(update));
      else liveSample(update);
      const now = done(update.stats);
      // Refresh the first results page as pages arrive (later pages are stable).
      if (view.index === 0 && (now !== lastDone || FINAL.has(update.status))) {
        lastDone = now;
        loadResults().catch(() => {});
      }
    }, () => view.job && FINAL.has(view.job.status));
  }

  // -- schedules -------------------------------------------------------------------------

  const schedules = { items: [], cursor: null, timer: null };

  function changeCounts(changes) {
    if (!changes) return null;
    return el("span", { class: "changes", title: "new / changed / unchanged / removed" },
      el("b", { class: "new", text: `+${changes.new}` }),
      el("b", { class: "changed", text: `~${changes.changed}` }),
      el("b", { class: "unchanged", text: `=${changes.unchanged}` }),
      el("b", { class: "removed", text: `−${changes.removed}` }));
  }

  function runLine(run) {
    const when = fmtTime(run.fired_at);
    const badge = run.job_id
      ? el("a", { href: `#/jobs/${encodeURIComponent(run.job_id)}`, class: `badge ${run.status}`, text: run.status })
      : el("span", { class: `badge ${run.status}`, title: run.reason || "", text: run.status });
    const note = run.missed ? el("span", { class: "muted small", text: `catch-up for ${run.missed + 1} ticks` })
      : run.reason ? el("span", { class: "muted small", text: run.reason }) : null;
    return el("div", { class: "run", "data-run": run.tick_at }, badge, changeCounts(run.changes),
      el("span", { class: "muted small", text: when }), note);
  }

  function scheduleRow(item) {
    const url = ((item.job && item.job.urls) || [""])[0];
    const repeats = item.cron ? `cron ${item.cron}` : `every ${item.every}`;
    const zone = item.timezone && item.timezone !== "UTC" ? ` (${item.timezone})` : "";
    const toggle = el("button", {
      type: "button", class: "secondary", text: item.paused ? "Resume" : "Pause",
      onclick: () => changeSchedule(item.id, { paused: !item.paused }),
    });
    const remove = el("button", {
      type: "button", class: "danger", text: "Delete",
      onclick: () => deleteSchedule(item.id),
    });
    const now = el("button", {
      type: "button", class: "secondary", text: "Run now",
      onclick: () => runSchedule(item.id),
    });
    return el("tr", { "data-schedule": item.id },
      el("td", { title: url }, el("div", { text: item.name || url }),
        item.name ? el("div", { class: "muted small", text: url }) : null),
      el("td", { text: repeats + zone }),
      el("td", {}, item.paused ? el("span", { class: "badge paused", text: "paused" })
        : el("span", { class: "next-run", text: fmtTime(item.next_run_at) })),
      el("td", {}, item.runs.length
        ? el("div", { class: "runs" }, ...item.runs.slice(0, 5).map(runLine))
        : el("span", { class: "muted small", text: "no runs yet" })),
      el("td", { class: "row-actions" }, now, toggle, remove),
    );
  }

  function renderSchedules() {
    $("schedules-body").replaceChildren(...schedules.items.map(scheduleRow));
    show("schedules-empty", schedules.items.length === 0);
    show("schedules-more", Boolean(schedules.cursor));
  }

  async function loadSchedules(more) {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (more && schedules.cursor) params.set("cursor", schedules.cursor);
    const page = await api("GET", `/v1/schedules?${params}`);
    schedules.items = more ? schedules.items.concat(page.items) : page.items;
    schedules.cursor = page.next_cursor;
    renderSchedules();
  }

  async function changeSchedule(id, body) {
    try {
      await api("PATCH", `/v1/schedules/${encodeURIComponent(id)}`, body);
      await loadSchedules(false);
    } catch (error) { report("schedules-error")(error); }
  }

  async function runSchedule(id) {
    try {
      await api("POST", `/v1/schedules/${encodeURIComponent(id)}/run`);
      await loadSchedules(false);
    } catch (error) { report("schedules-error")(error); }
  }

  async function deleteSchedule(id) {
    try {
      await api("DELETE", `/v1/schedules/${encodeURIComponent(id)}`);
      await loadSchedules(false);
    } catch (error) { report("schedules-error")(error); }
  }

  $("schedules-more").addEventListener("click", () => loadSchedules(true).catch(report("schedules-error")));

  $("schedule-form").elements.kind.addEventListener("change", (event) => {
    const when = event.target.form.elements.when;
    when.value = event.target.value === "cron" ? "0 6 * * *" : "6h";
  });

  $("schedule-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const error = $("schedule-error");
    error.hidden = true;
    const body = {
      job: {
        url: form.elements.url.value.trim(),
        max_depth: Number(form.elements.max_depth.value || 0),
        max_pages: Number(form.elements.max_pages.value || 100),
      },
      [form.elements.kind.value]: form.elements.when.value.trim(),
      timezone: form.elements.timezone.value.trim() || "UTC",
    };
    const name = form.elements.name.value.trim();
    if (name) body.name = name;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await api("POST", "/v1/schedules", body);
      form.elements.url.value = "";
      form.elements.name.value = "";
      await loadSchedules(false);
    } catch (failure) {
      showFormError(error, failure);
    } finally {
      button.disabled = false;
    }
  });

  // -- routing ---------------------------------------------------------------------------

  async function route() {
    stopAll();
    if (keyWanted) return;
    const match = location.hash.match(/^#\/jobs\/([^/]+)$/);
    const onSchedules = location.hash === "#/schedules";
    show("job-view", Boolean(match));
    show("schedules-view", onSchedules);
    show("jobs-view", !match && !onSchedules);
    try {
      if (onSchedules) {
        await loadSchedules(false);
        // Runs happen on the server's clock: refresh to show them (and next run times).
        schedules.timer = setInterval(() => loadSchedules(false).catch(() => {}), 3000);
      } else if (match) {
        await openJob(decodeURIComponent(match[1]));
      } else {
        await loadJobs(false);
        // New jobs (from the CLI, other tabs) show up without a reload.
        list.expanded = false;
        list.timer = setInterval(() => {
          if (!list.expanded) loadJobs(false).catch(() => {});
        }, 5000);
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      if (match) {
        show("job-view", true);
        report("job-error")(error);
      } else {
        report("submit-error")(error);
      }
    }
  }

  window.addEventListener("hashchange", route);
  if (sessionStorage.getItem(KEY_STORAGE)) $("sign-out").hidden = false;
  route();
})();
