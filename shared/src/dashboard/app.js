// The campaign dashboard: submit a brief, list runs, watch one live, read its bundle and
// audit, cancel and retry. Plain ES module, no build step, served by the API itself.
//
// Safety: every text from a brief, a model or the server is set with textContent (never
// innerHTML); the SVG preview is shown as an <img> from a data: URL, where scripts do not
// run; the server's Content-Security-Policy allows scripts from this origin only.

const view = document.getElementById("view");
const WS_URL = document.querySelector('meta[name="campaign-ws"]')?.content || "";
const AGENTS = ["copy", "social", "visual"];
const TERMINAL = new Set(["completed", "failed", "cancelled"]);

// ------------------------------------------------------------------ DOM and API helpers

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const tokenInput = document.getElementById("token");
tokenInput.value = sessionStorage.getItem("campaign-token") || "";
tokenInput.addEventListener("change", () =>
  sessionStorage.setItem("campaign-token", tokenInput.value.trim()),
);

/** Calls the API; resolves to {status, body} (body parsed when JSON). */
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = tokenInput.value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    return { status: 0, body: { title: "Network error", detail: String(e) } };
  }
  const type = res.headers.get("content-type") || "";
  const parsed = type.includes("json") ? await res.json().catch(() => null) : await res.text();
  return { status: res.status, body: parsed };
}

/** A problem document (or anything) as one line. */
function problemText(r) {
  const b = r.body || {};
  if (r.status === 0) return `The API could not be reached: ${b.detail}`;
  return `${r.status} ${b.title || ""}: ${b.detail || JSON.stringify(b)}`.trim();
}

function time(at) {
  const d = new Date(at);
  return Number.isNaN(d.getTime()) ? at : d.toLocaleTimeString([], { hour12: false }) +
    "." + String(d.getMilliseconds()).padStart(3, "0");
}

function dateTime(at) {
  const d = new Date(at);
  return Number.isNaN(d.getTime()) ? at : d.toLocaleString([], { hour12: false });
}

function badge(value, kind = "status") {
  return el("span", { class: `badge ${kind}-${value || "none"}`, "data-value": value || "" },
    (value || "—").replace("_", " "));
}

// ------------------------------------------------------------------ routing

let stopCurrent = () => {};

function route() {
  stopCurrent();
  stopCurrent = () => {};
  const hash = location.hash || "#/runs";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  view.replaceChildren();
  document.getElementById("nav-new").classList.toggle("active", parts[0] === "new");
  document.getElementById("nav-runs").classList.toggle("active", parts[0] === "runs");
  document.getElementById("nav-brands").classList.toggle("active", parts[0] === "brands");
  if (parts[0] === "new") return newBrief();
  if (parts[0] === "brands") return brandsView();
  if (parts[0] === "runs" && parts[1]) return runView(parts[1]);
  return runsList(params.get("status") || "");
}


// ------------------------------------------------------------------ the brief form

// The server's rules (shared/src/domain/brief.rs), mirrored as hints; the server decides.
const RULES = {
  text: 500,
  tone: 100,
  maxLength: { copy: [150, 5000, 1500], social: [60, 280, 280], visual: [40, 300, 140] },
  prohibitedTerms: [100, 64],
  toneAdjectives: [20, 40],
  palette: [12, 40],
};

function field(name, label, input, hint) {
  return el("div", { class: "field", "data-field": name },
    el("label", { for: input.id }, label),
    input,
    hint ? el("p", { class: "hint" }, hint) : null,
    el("p", { class: "error", role: "alert", "data-error-for": name }));
}

function listValue(text) {
  return text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
}

function newBrief() {
  const input = (id, attrs) => el("input", { id, name: id, ...attrs });
  const area = (id, attrs) => el("textarea", { id, name: id, rows: 2, ...attrs });
  const number = (agent) => {
    const [min, max, def] = RULES.maxLength[agent];
    return input(`maxLength-${agent}`, { type: "number", min, max, placeholder: def });
  };
  const formError = el("div", { class: "form-error", role: "alert", id: "form-error" });
  const form = el("form", { id: "brief-form", class: "brief" },
    el("h2", {}, "New campaign brief"),
    field("objective", "Objective", area("objective", { required: true, maxlength: RULES.text }),
      `What the campaign must achieve; 1–${RULES.text} characters.`),
    field("audience", "Audience", input("audience", { required: true, maxlength: RULES.text }),
      `Who it speaks to; 1–${RULES.text} characters.`),
    field("product", "Product", input("product", { required: true, maxlength: RULES.text }),
      `1–${RULES.text} characters.`),
    field("tone", "Tone", input("tone", { required: true, maxlength: RULES.tone }),
      `e.g. "energetic and warm"; 1–${RULES.tone} characters.`),
    field("executionMode", "Execution mode",
      el("select", { id: "executionMode", name: "executionMode" },
        el("option", { value: "parallel" }, "parallel — the three agents at once"),
        el("option", { value: "sequential" }, "sequential — one at a time, in the priority order"),
        el("option", { value: "auto" }, "auto — parallel unless recent agents were slow or throttled"),
        el("option", { value: "" }, "the server's default")),
      null),
    field("priority", "Priority",
      input("priority", { placeholder: "copy, social, visual" }),
      "The agents' order (comma-separated; those not named follow in the default order): sequential runs go in it, audits record it."),
    field("brandId", "Brand kit",
      input("brandId", { list: "brand-ids", placeholder: "none", maxlength: 64 }),
      "A kit from Brand kits: its guidelines and prohibited terms are merged with the ones below."),
    el("datalist", { id: "brand-ids" }),
    el("fieldset", {},
      el("legend", {}, "Length limits (characters; empty for the default)"),
      ...AGENTS.map((a) => {
        const [min, max, def] = RULES.maxLength[a];
        return field(`constraints.maxLength.${a}`, a, number(a),
          `${min}–${max}, default ${def}` + ({
            copy: "; headline, body and call to action together",
            social: "; each post, hashtags included",
            visual: "; headline and subheadline together",
          })[a]);
      })),
    field("constraints.prohibitedTerms", "Prohibited terms",
      area("prohibitedTerms", {}),
      `Comma- or line-separated; at most ${RULES.prohibitedTerms[0]}, each 1–${RULES.prohibitedTerms[1]} characters.`),
    field("brandGuidelines.toneAdjectives", "Brand tone adjectives",
      input("toneAdjectives", {}),
      `Comma-separated; at most ${RULES.toneAdjectives[0]}, each 1–${RULES.toneAdjectives[1]} characters.`),
    field("brandGuidelines.palette", "Brand palette",
      input("palette", {}),
      `Comma-separated; at most ${RULES.palette[0]}: color names (teal), #RRGGBB, or descriptors ("deep navy", up to ${RULES.palette[1]} characters).`),
    formError,
    el("button", { type: "submit", id: "submit" }, "Start campaign"));

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearProblem(form, formError);
    const v = (id) => form.querySelector(`#${id}`).value.trim();
    const brief = {
      objective: v("objective"),
      audience: v("audience"),
      product: v("product"),
      tone: v("tone"),
    };
    if (v("executionMode")) brief.executionMode = v("executionMode");
    const priority = listValue(v("priority"));
    if (priority.length) brief.priority = priority;
    if (v("brandId")) brief.brandId = v("brandId");
    const maxLength = {};
    for (const a of AGENTS) if (v(`maxLength-${a}`)) maxLength[a] = Number(v(`maxLength-${a}`));
    const terms = listValue(v("prohibitedTerms"));
    if (Object.keys(maxLength).length || terms.length) {
      brief.constraints = {};
      if (Object.keys(maxLength).length) brief.constraints.maxLength = maxLength;
      if (terms.length) brief.constraints.prohibitedTerms = terms;
    }
    const adjectives = listValue(v("toneAdjectives"));
    const palette = listValue(v("palette"));
    if (adjectives.length || palette.length) {
      brief.brandGuidelines = {};
      if (adjectives.length) brief.brandGuidelines.toneAdjectives = adjectives;
      if (palette.length) brief.brandGuidelines.palette = palette;
    }
    const button = form.querySelector("#submit");
    button.disabled = true;
    const r = await api("POST", "/campaigns", brief);
    button.disabled = false;
    if (r.status === 202 || r.status === 200) {
      location.hash = `#/runs/${r.body.runId}`;
      return;
    }
    showProblem(form, formError, r);
  });
  view.append(form);
  form.querySelector("#objective").focus();
  api("GET", "/brands").then((r) => {
    const list = form.querySelector("#brand-ids");
    for (const k of (r.status === 200 && r.body.brands) || []) {
      list.append(el("option", { value: k.brandId }, `${k.name || k.brandId} (v${k.version})`));
    }
  });
}

// ------------------------------------------------------------------ brand kits

/** The library: every kit, a form to add one or replace one (as its next version), delete. */
async function brandsView() {
  const list = el("div", { class: "brands", id: "brand-list" });
  const input = (id, attrs) => el("input", { id, name: id, ...attrs });
  const formError = el("div", { class: "form-error", role: "alert", id: "brand-error" });
  const form = el("form", { id: "brand-form", class: "brief" },
    el("h2", {}, "Add or replace a brand kit"),
    field("brandId", "Id", input("kit-id", { required: true, maxlength: 64, placeholder: "acme-outdoor" }),
      "a-z, 0-9 and '-'; an existing id is replaced as its next version"),
    field("name", "Name", input("kit-name", { maxlength: 100 }), null),
    field("brandGuidelines.toneAdjectives", "Tone adjectives", input("kit-adjectives", {}), "Comma-separated"),
    field("brandGuidelines.palette", "Palette", input("kit-palette", {}), "Comma-separated: color names, #RRGGBB or descriptors"),
    field("constraints.prohibitedTerms", "Prohibited terms", input("kit-terms", {}), "Comma-separated"),
    el("p", { class: "hint" }, "Replacing a kit: a field left empty keeps the kit's value (its length limits are kept too)."),
    formError,
    el("button", { type: "submit", id: "kit-save" }, "Save kit"));
  const kits = new Map();
  async function load() {
    const r = await api("GET", "/brands");
    if (r.status !== 200) {
      list.replaceChildren(el("p", { class: "form-error" }, problemText(r)));
      return;
    }
    kits.clear();
    const rows = r.body.brands.map((k) => {
      kits.set(k.brandId, k);
      const g = k.brandGuidelines || {};
      return el("tr", { "data-brand": k.brandId },
        el("td", {}, k.brandId), el("td", {}, k.name), el("td", {}, `v${k.version}`),
        el("td", {}, (g.palette || []).join(", ")),
        el("td", {}, (g.toneAdjectives || []).join(", ")),
        el("td", {}, ((k.constraints || {}).prohibitedTerms || []).join(", ")),
        el("td", {}, el("button", { type: "button", class: "delete", onclick: async () => {
          const d = await api("DELETE", `/brands/${encodeURIComponent(k.brandId)}`);
          if (d.status !== 204) formError.textContent = problemText(d);
          load();
        } }, "Delete")));
    });
    list.replaceChildren(rows.length
      ? el("table", {}, el("thead", {}, el("tr", {}, ...["Id", "Name", "Version", "Palette", "Tone", "Prohibited", ""].map((h) => el("th", {}, h)))), el("tbody", {}, rows))
      : el("p", { class: "hint" }, "No brand kits yet."));
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearProblem(form, formError);
    const v = (id) => form.querySelector(`#${id}`).value.trim();
    const id = v("kit-id");
    const old = kits.get(id);
    // Replacing: what was typed replaces the kit's value; an empty field keeps it.
    const keep = (typed, current) => (typed.length ? typed : current || []);
    const og = (old && old.brandGuidelines) || {};
    const oc = (old && old.constraints) || {};
    const kit = {
      name: v("kit-name") || (old ? old.name : ""),
      brandGuidelines: {
        toneAdjectives: keep(listValue(v("kit-adjectives")), og.toneAdjectives),
        palette: keep(listValue(v("kit-palette")), og.palette),
      },
      constraints: {
        prohibitedTerms: keep(listValue(v("kit-terms")), oc.prohibitedTerms),
        ...(oc.maxLength ? { maxLength: oc.maxLength } : {}),
      },
    };
    const r = old
      ? await api("PUT", `/brands/${encodeURIComponent(id)}`, { ...kit, version: old.version })
      : await api("POST", "/brands", { brandId: id, ...kit });
    if (r.status === 200 || r.status === 201) {
      form.reset();
      load();
      return;
    }
    showProblem(form, formError, r);
  });
  view.append(el("h2", {}, "Brand kits"), list, form);
  await load();
}

/** Removes what showProblem put on the form. */
function clearProblem(form, formError) {
  for (const e of form.querySelectorAll(".error")) e.textContent = "";
  for (const e of form.querySelectorAll(".field.invalid")) e.classList.remove("invalid");
  formError.textContent = "";
}

/** A 400's violations next to the fields they name; the rest above the button. */
function showProblem(form, formError, r) {
  const errors = (r.body && r.body.errors) || [];
  const unplaced = [];
  for (const { field: path, message } of errors) {
    const m = /^(.*?)\[(\d+)\]$/.exec(path);
    const base = m ? m[1] : path;
    const slot = form.querySelector(`[data-error-for="${CSS.escape(base)}"]`);
    if (!slot) {
      unplaced.push(`${path}: ${message}`);
      continue;
    }
    const line = m ? `entry ${Number(m[2]) + 1}: ${message}` : message;
    slot.textContent = slot.textContent ? `${slot.textContent} ${line}` : line;
    slot.closest(".field").classList.add("invalid");
  }
  formError.textContent = errors.length && !unplaced.length
    ? "The server refused the brief: see the fields marked."
    : [problemText(r), ...unplaced].join(" ");
  form.querySelector(".field.invalid input, .field.invalid textarea")?.focus();
}

// ------------------------------------------------------------------ the runs list

const STATUSES = ["queued", "generating", "auditing", "audit_pending", "completed", "failed", "cancelled"];

function runsList(status) {
  const select = el("select", { id: "status-filter" },
    el("option", { value: "" }, "every status"),
    ...STATUSES.map((s) => el("option", { value: s, selected: s === status }, s.replace("_", " "))));
  select.addEventListener("change", () => {
    location.hash = select.value ? `#/runs?status=${select.value}` : "#/runs";
  });
  const body = el("tbody", { id: "runs" });
  const more = el("button", { id: "more", type: "button", hidden: true }, "Older runs");
  const note = el("p", { class: "hint", id: "runs-note" });
  view.append(
    el("section", { class: "runs" },
      el("div", { class: "toolbar" }, el("h2", {}, "Runs"),
        el("label", {}, "Status ", select),
        el("a", { href: "#/new", class: "button" }, "New brief")),
      el("table", {},
        el("thead", {}, el("tr", {}, ...["Created", "Product", "Status", "Outcome", "Iteration", ""].map((h) => el("th", {}, h)))),
        body),
      note, more));
  let cursor = null;
  const load = async () => {
    const q = new URLSearchParams({ limit: "20" });
    if (cursor) q.set("cursor", cursor);
    if (status) q.set("status", status);
    const r = await api("GET", `/campaigns?${q}`);
    if (r.status !== 200) {
      note.textContent = problemText(r);
      return;
    }
    for (const run of r.body.runs) {
      body.append(el("tr", { "data-run": run.runId },
        el("td", {}, dateTime(run.createdAt)),
        el("td", {}, run.product),
        el("td", {}, badge(run.status)),
        el("td", {}, badge(run.outcome, "outcome")),
        el("td", {}, `#${run.iteration}`, run.parentRunId
          ? [" (retry of ", el("a", { href: `#/runs/${run.parentRunId}` }, short(run.parentRunId)), ")"]
          : null),
        el("td", {}, el("a", { href: `#/runs/${run.runId}` }, "Open"))));
    }
    cursor = r.body.nextCursor || null;
    more.hidden = !cursor;
    if (!body.children.length) note.textContent = status ? `No ${status.replace("_", " ")} runs.` : "No runs yet.";
  };
  more.addEventListener("click", load);
  load();
}

function short(id) {
  return `…${id.slice(-8)}`;
}

// ------------------------------------------------------------------ the run view

const OUTCOME_WORDS = {
  success: "Success: every artifact was generated and audited.",
  partial: "Partial: some agents failed; the artifacts of the others are ready. Retry the failed ones below.",
  failure: "Failure: no artifact was delivered.",
  cancelled: "Cancelled: the run was stopped; artifacts completed before are kept.",
};

const CODE_WORDS = {
  AgentFailed: "the agent failed",
  "States.Timeout": "the agent timed out",
  Transient: "the agent kept failing on a temporary error",
  Cancelled: "cancelled before it finished",
  AuditUnavailable: "the audit service was unavailable",
  ExecutionFailed: "the workflow failed",
};

function runView(id) {
  const state = { id, run: null, seen: new Set(), transport: null, refresh: null, stopped: false };
  const root = el("section", { class: "run", id: "run", "data-run": id });
  const heading = el("h2", { id: "run-title" }, "Run ", short(id));
  const meta = el("p", { class: "meta", id: "run-meta" });
  const chain = el("nav", { class: "chain", id: "chain", "aria-label": "Iterations" });
  const statusLine = el("p", { class: "run-status" }, "Status: ", el("span", { id: "run-status" }));
  const live = el("span", { class: "hint", id: "live" });
  const agents = el("div", { class: "agents", id: "agents" },
    ...AGENTS.map((a) => el("div", { class: "agent", "data-agent": a, "data-status": "" },
      el("h3", {}, a), el("span", { class: "agent-status" }), el("p", { class: "agent-detail" }))));
  const actions = el("div", { class: "actions", id: "actions" });
  const envelope = el("div", { class: "envelope", id: "envelope", hidden: true });
  const artifacts = el("div", { class: "artifacts", id: "artifacts" });
  const timeline = el("ol", { class: "timeline", id: "timeline" });
  const message = el("p", { class: "form-error", id: "run-error", role: "alert" });
  root.append(heading, meta, chain, el("div", { class: "statusbar" }, statusLine, live), agents,
    actions, message, envelope,
    el("h3", {}, "Artifacts"), artifacts,
    el("details", { open: true }, el("summary", {}, "Timeline"), timeline));
  view.append(root);

  const refresh = async () => {
    const r = await api("GET", `/campaigns/${id}`);
    if (state.stopped) return;
    if (r.status !== 200) {
      message.textContent = problemText(r);
      return;
    }
    state.run = r.body;
    render();
  };
  const scheduleRefresh = () => {
    clearTimeout(state.refresh);
    state.refresh = setTimeout(refresh, 100);
  };

  function render() {
    const run = state.run;
    heading.textContent = run.brief.product;
    const order = run.executionMode === "sequential" ? ` (${(run.brief.priority || AGENTS).join(" → ")})` : "";
    const brand = run.brief.brandId ? ` · brand kit ${run.brief.brandId} v${run.brief.brandVersion}` : "";
    meta.replaceChildren(
      `Run ${run.runId} · ${run.executionMode}${order} · iteration ${run.iteration} · created ${dateTime(run.createdAt)}${brand}`,
      ...(run.modeDecision ? [el("span", { class: "hint mode-decision" }, ` · auto chose ${run.modeDecision.mode}: ${run.modeDecision.reason}`)] : []));
    setStatus(run.status);
    for (const a of AGENTS) {
      const s = run.agents[a] || {};
      setAgent(a, s.status);
      const detail = [];
      if (s.attempts) detail.push(`${s.attempts} attempt${s.attempts > 1 ? "s" : ""}`);
      if (s.verdict) detail.push(`audit: ${s.verdict}`);
      if (s.error) detail.push(`${CODE_WORDS[s.error.code] || s.error.code}: ${s.error.message}`);
      agents.querySelector(`[data-agent="${a}"] .agent-detail`).textContent = detail.join(" · ");
    }
    renderEnvelope(run);
    renderActions(run);
    renderArtifacts(run);
  }

  function setStatus(status) {
    const s = document.getElementById("run-status");
    s.replaceChildren(badge(status));
    s.dataset.status = status;
  }

  function setAgent(agent, status) {
    const card = agents.querySelector(`[data-agent="${agent}"]`);
    card.dataset.status = status || "";
    card.querySelector(".agent-status").replaceChildren(badge(status));
  }

  function renderEnvelope(run) {
    const env = run.envelope;
    if (!env) {
      envelope.hidden = run.status !== "audit_pending";
      envelope.replaceChildren(run.status === "audit_pending"
        ? el("p", {}, "Audit pending: the audit service was unavailable. The artifacts will be audited when it is back.")
        : "");
      return;
    }
    envelope.hidden = false;
    envelope.dataset.outcome = env.outcome;
    envelope.replaceChildren(
      el("p", { class: "outcome" }, badge(env.outcome, "outcome"), " ", OUTCOME_WORDS[env.outcome] || env.outcome));
    if (env.reasons.length) {
      envelope.append(el("ul", { class: "reasons" }, ...env.reasons.map((r) => el("li", {},
        r.agent ? el("strong", {}, `${r.agent}: `) : null,
        `${CODE_WORDS[r.code] || r.code} — ${r.message}`))));
    }
  }

  function renderActions(run) {
    if (!TERMINAL.has(run.status)) {
      // The same button across refreshes while the run is open: one replaced between a
      // press and its release (an event's refresh landing mid-click) loses the click.
      if (actions.querySelector("#cancel")) return;
      actions.replaceChildren(el("button", {
        type: "button", id: "cancel", class: "danger",
        onclick: async (ev) => {
          ev.target.disabled = true;
          const r = await api("POST", `/campaigns/${id}/cancel`, {});
          if (r.status !== 200) {
            message.textContent = problemText(r);
            ev.target.disabled = false;
          }
          scheduleRefresh();
        },
      }, "Cancel run"));
      return;
    }
    actions.replaceChildren();
    const failed = run.envelope?.retry?.agents || [];
    const boxes = AGENTS.map((a) => el("label", { class: "check" },
      el("input", { type: "checkbox", name: "retry-agent", value: a, checked: failed.includes(a) }), ` ${a}`));
    actions.append(el("div", { class: "retry" },
      el("span", {}, failed.length ? "Retry the failed agents, or choose: " : "Run again for: "),
      ...boxes,
      el("button", {
        type: "button", id: "retry",
        onclick: async (ev) => {
          const chosen = [...actions.querySelectorAll('input[name="retry-agent"]:checked')].map((b) => b.value);
          if (!chosen.length) {
            message.textContent = "Choose at least one agent to retry.";
            return;
          }
          ev.target.disabled = true;
          const r = await api("POST", `/campaigns/${id}/retry`, { agents: chosen });
          ev.target.disabled = false;
          if (r.status === 202 || r.status === 200) location.hash = `#/runs/${r.body.runId}`;
          else message.textContent = problemText(r);
        },
      }, "Retry")));
  }

  function renderArtifacts(run) {
    const max = run.brief.constraints?.maxLength || {};
    artifacts.replaceChildren(...AGENTS.map((a) => {
      const art = run.artifacts.find((x) => x.agent === a);
      if (!art) return el("article", { class: "artifact empty", "data-artifact": a }, el("h4", {}, a), el("p", { class: "hint" }, "No artifact (yet)."));
      return el("article", { class: "artifact", "data-artifact": a },
        el("h4", {}, a),
        renderContent(a, art.content, max),
        art.model ? el("p", { class: "hint model" }, modelLine(art.model)) : null,
        renderAudit(art.audit));
    }));
  }

  // Live events: the WebSocket, else SSE, else polling.
  const onEvent = (e) => {
    if (state.stopped || state.seen.has(e.seq)) return;
    state.seen.add(e.seq);
    state.last = Math.max(state.last || 0, e.seq);
    timeline.append(el("li", { "data-seq": e.seq, "data-scope": e.scope, "data-status": e.status },
      el("time", { datetime: e.at }, time(e.at)), " ",
      el("span", { class: "scope" }, e.scope), " → ", badge(e.status)));
    if (e.scope === "run") setStatus(e.status);
    else setAgent(e.scope, e.status);
    if (["generated", "completed", "failed", "cancelled", "audit_pending"].includes(e.status)) scheduleRefresh();
  };
  state.transport = follow(id, () => state.last || 0, onEvent, (how) => {
    live.textContent = how ? `live (${how})` : "";
    root.dataset.live = how || "";
  });
  stopCurrent = () => {
    state.stopped = true;
    clearTimeout(state.refresh);
    state.transport.stop();
  };
  refresh().then(() => state.run && ancestry(state.run, chain));
}

function renderContent(agent, c, max) {
  if (agent === "copy") {
    return el("div", { class: "copy" },
      el("h5", { class: "headline" }, c.headline),
      el("p", { class: "body" }, c.body),
      el("p", {}, "Call to action: ", el("strong", { class: "cta" }, c.callToAction)));
  }
  if (agent === "social") {
    const limit = max.social || RULES.maxLength.social[2];
    return el("ul", { class: "posts" }, ...c.posts.map((p) => el("li", { class: "post" },
      el("span", { class: "network" }, p.network),
      el("p", { class: "text" }, p.text),
      el("p", { class: "hashtags" }, ...p.hashtags.map((h) => el("span", { class: "tag" }, h))),
      el("p", { class: "hint count" }, `${[...p.text].length} / ${limit} characters`))));
  }
  const swatches = el("p", { class: "palette" }, ...c.palette.map((p) => {
    const s = el("span", { class: "swatch", title: `${p.role} ${p.hex}` });
    if (/^#[0-9A-Fa-f]{6}$/.test(p.hex)) s.style.backgroundColor = p.hex;
    return el("span", { class: "color" }, s, ` ${p.role} ${p.hex}`);
  }));
  return el("div", { class: "visual" },
    el("figure", {},
      el("img", { class: "poster", alt: `Poster preview: ${c.headline}`, src: svgDataUrl(c.svg) }),
      el("figcaption", {}, el("strong", {}, c.headline), " — ", c.subheadline)),
    el("dl", {},
      el("dt", {}, "Layout"), el("dd", {}, c.layout),
      el("dt", {}, "Imagery"), el("dd", {}, c.imagery),
      el("dt", {}, "Typography"), el("dd", {}, c.typography)),
    swatches);
}

/** The SVG as an image: a data: URL in an <img> never runs the SVG's scripts. */
function svgDataUrl(svg) {
  const bytes = new TextEncoder().encode(svg);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return `data:image/svg+xml;base64,${btoa(bin)}`;
}

function modelLine(m) {
  const parts = [`Written by ${m.model}`];
  if (m.promptTokens !== undefined) parts.push(`${m.promptTokens} + ${m.completionTokens ?? "?"} tokens`);
  if (m.firstTokenMs !== undefined) parts.push(`first token ${m.firstTokenMs} ms`);
  parts.push(`${m.latencyMs} ms`);
  if (m.repaired) parts.push("repaired once");
  return parts.join(" · ");
}

function renderAudit(audit) {
  if (!audit) return el("p", { class: "hint audit" }, "Not audited yet.");
  return el("div", { class: "audit", "data-verdict": audit.verdict },
    el("p", {}, "Audit: ", badge(audit.verdict, "verdict")),
    audit.findings.length
      ? el("ul", { class: "findings" }, ...audit.findings.map((f) => el("li", { class: `finding severity-${f.severity}` },
        el("span", { class: `badge severity-${f.severity}` }, f.severity), ` ${f.rule}: ${f.message}`)))
      : el("p", { class: "hint" }, "No findings."));
}

/** The run's parents, oldest first, as links: the iteration chain. */
async function ancestry(run, nav) {
  const chain = [run];
  let cur = run;
  while (cur.parentRunId && chain.length < 20) {
    const r = await api("GET", `/campaigns/${cur.parentRunId}`);
    if (r.status !== 200) break;
    cur = r.body;
    chain.unshift(cur);
  }
  if (chain.length === 1) return;
  nav.replaceChildren("Iterations: ", ...chain.flatMap((r, i) => [
    i ? " → " : "",
    r.runId === run.runId
      ? el("strong", { "data-run": r.runId }, `#${r.iteration} (this run)`)
      : el("a", { href: `#/runs/${r.runId}`, "data-run": r.runId }, `#${r.iteration} ${short(r.runId)}`),
  ]));
}

// ------------------------------------------------------------------ live events

function wsUrl() {
  if (!WS_URL || WS_URL.startsWith("__")) return null;
  if (/^wss?:\/\//.test(WS_URL)) return WS_URL;
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${WS_URL}`;
}

/** Follows a run's events: WebSocket, else SSE, else polling. Returns {stop}. */
function follow(id, after, onEvent, onTransport) {
  let stopped = false;
  let close = () => {};
  const finished = (e) => e.scope === "run" && TERMINAL.has(e.status);

  const poll = () => {
    onTransport("polling");
    let timer;
    const tick = async () => {
      if (stopped) return;
      const r = await api("GET", `/campaigns/${id}/events?after=${after()}`);
      let done = false;
      if (r.status === 200) {
        const events = Array.isArray(r.body) ? r.body : r.body.events || [];
        for (const e of events) {
          onEvent(e);
          done = done || finished(e);
        }
      }
      if (!done && !stopped) timer = setTimeout(tick, 1000);
    };
    tick();
    close = () => clearTimeout(timer);
  };

  const sse = () => {
    if (!("EventSource" in window)) return poll();
    const source = new EventSource(`/campaigns/${id}/events?after=${after()}`);
    let opened = false;
    const handle = (m) => {
      opened = true;
      const e = JSON.parse(m.data);
      onEvent(e);
      if (finished(e)) source.close();
    };
    source.addEventListener("run.status", handle);
    source.addEventListener("agent.status", handle);
    source.onopen = () => {
      opened = true;
      onTransport("server-sent events");
    };
    source.onerror = () => {
      if (!opened) {
        source.close();
        if (!stopped) poll();
      }
    };
    close = () => source.close();
  };

  const url = wsUrl();
  if (!url || !("WebSocket" in window)) {
    sse();
  } else {
    let socket;
    try {
      socket = new WebSocket(url);
    } catch {
      socket = null;
    }
    if (!socket) {
      sse();
    } else {
      let opened = false;
      let done = false;
      socket.onopen = () => {
        opened = true;
        onTransport("WebSocket");
        socket.send(JSON.stringify({ action: "subscribe", runId: id, after: after() }));
      };
      socket.onmessage = (m) => {
        const e = JSON.parse(m.data);
        if (e.error) return;
        onEvent(e);
        if (finished(e)) {
          done = true;
          socket.close();
        }
      };
      // A connection lost mid-run: go on by polling from the last event seen.
      socket.onclose = () => {
        if (opened && !done && !stopped) poll();
      };
      socket.onerror = () => {
        if (!opened && !stopped) {
          socket.close();
          sse();
        }
      };
      close = () => socket.close();
    }
  }
  return {
    stop() {
      stopped = true;
      close();
      onTransport(null);
    },
  };
}

// ------------------------------------------------------------------ start

window.addEventListener("hashchange", route);
route();
