// StudyLLaMA study app: the pages' behaviour. Learner text is only ever put on the page with textContent,
// never parsed as HTML; the only markup inserted is the server's SVG drawings, built there with every text escaped.
"use strict";

const $ = (id) => document.getElementById(id);
const COOKIE = "studyllama_learner";

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function notice(message) {
  const box = $("notice");
  box.textContent = message || "";
  box.hidden = !message;
}

function learner() {
  return ($("learner").value || "").trim();
}

function setLearnerCookie(name) {
  document.cookie = `${COOKIE}=${encodeURIComponent(name)}; path=/; max-age=31536000; samesite=strict`;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    body = { error: `the server answered ${response.status} without JSON` };
  }
  if (!response.ok) throw new Error(body && body.error ? body.error : `HTTP ${response.status}`);
  return body;
}

function postJSON(path, data) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });
}

// --- learner ----------------------------------------------------------------------------------------------
async function loadLearners() {
  const list = $("learner-list");
  const { learners } = await api("/api/learners");
  list.replaceChildren(...learners.map((name) => { const o = el("option"); o.value = name; return o; }));
}

function initLearner() {
  $("learner-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const { learner: name } = await postJSON("/api/learners", { name: learner() });
      localStorage.setItem(COOKIE, name);
      setLearnerCookie(name);
      location.reload();
    } catch (e) {
      notice(e.message);
    }
  });
  if (!learner() && localStorage.getItem(COOKIE)) $("learner").value = localStorage.getItem(COOKIE);
  if (learner()) { localStorage.setItem(COOKIE, learner()); setLearnerCookie(learner()); }
  return loadLearners();
}

// --- ask --------------------------------------------------------------------------------------------------
function renderContext(ctx) {
  const list = $("evidence");
  list.replaceChildren(...ctx.evidence.map((line) => el("li", line.replace(/^\[\d+\]\s*/, ""))));
  $("evidence-note").textContent = ctx.graph_empty
    ? "The concept graph knows nothing about this question: no evidence, and the model got the plain prompt."
    : ctx.reads_graph ? "The model was given this numbered evidence."
      : "Retrieved for you; this system does not read the graph.";
  $("graph").innerHTML = ctx.subgraph_svg; // server-built SVG, every label escaped there
  const guide = $("guide");
  guide.replaceChildren(...ctx.study_guide.map((g) => {
    const box = el("article", null, "guide-item");
    box.append(el("h3", g.question), el("p", `${g.domain} · ${g.topic} · similarity ${g.similarity}`, "muted"),
      el("p", g.answer, "answer"));
    return box;
  }));
}

async function ask(question) {
  const status = $("ask-status");
  const out = $("answer");
  $("asked").textContent = question;
  out.textContent = "";
  delete out.dataset.done;
  $("answer-meta").textContent = "";
  $("ask-button").disabled = true;
  status.textContent = "retrieving…";
  try {
    const response = await fetch("/api/ask", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ question }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.error || `HTTP ${response.status}`);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const kind = (block.match(/^event: (.*)$/m) || [])[1];
        const data = JSON.parse((block.match(/^data: (.*)$/m) || [])[1] || "null");
        if (kind === "context") { renderContext(data); status.textContent = "generating…"; }
        else if (kind === "token") out.textContent += data.text;
        else if (kind === "done") {
          out.textContent = data.answer;
          out.dataset.done = "1";
          const secs = data.first_token_s == null ? "" : `, first token after ${data.first_token_s.toFixed(2)} s`;
          $("answer-meta").textContent = `${data.new_tokens} tokens, stopped by ${data.stop_reason}${secs}`;
          status.textContent = "";
        } else if (kind === "error") throw new Error(data.message);
      }
    }
  } catch (e) {
    status.textContent = "";
    notice(e.message);
  } finally {
    $("ask-button").disabled = false;
  }
}

function initAsk() {
  $("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    notice("");
    const question = $("question").value.trim();
    if (!question) { notice("the question is empty: type a question first"); return; }
    ask(question);
  });
}

// --- mock interview ---------------------------------------------------------------------------------------
let current = null; // the question being practised

function draftKey() {
  return current ? `studyllama-draft:${learner()}:${current.id}` : null;
}

function showQuestion(q) {
  current = q;
  localStorage.setItem(`studyllama-current:${learner()}`, q.id);
  $("question-card").hidden = false;
  $("grade-card").hidden = true;
  $("question-text").textContent = q.question;
  $("question-meta").textContent = `${q.domain} · ${q.difficulty || "unrated"} · ${q.topic}`;
  $("answer-text").value = localStorage.getItem(draftKey()) || "";
  $("answer-status").textContent = "";
}

function fillTopics() {
  const topics = JSON.parse($("topics-data").textContent);
  const domain = $("domain").value;
  const names = domain ? topics[domain] : [...new Set(Object.values(topics).flat())].sort();
  $("topic").replaceChildren(el("option", "any"), ...names.map((t) => el("option", t)));
  $("topic").firstChild.value = "";
}

async function nextQuestion(mode) {
  notice("");
  const params = new URLSearchParams({ mode, domain: $("domain").value, difficulty: $("difficulty").value,
    topic: $("topic").value });
  if (learner()) params.set("learner", learner());
  try {
    const data = await api(`/api/next?${params}`);
    if (!data.question) { notice(data.message); return; }
    showQuestion(data.question);
  } catch (e) {
    notice(e.message);
  }
}

function chips(list, items) {
  list.replaceChildren(...(items.length ? items.map((c) => el("li", c.name)) : [el("li", "none", "muted")]));
}

function definitions(list, items, extra) {
  list.replaceChildren();
  if (!items.length) { list.append(el("dd", "none", "muted")); return; }
  for (const c of items) list.append(el("dt", extra ? `${c.name} (${extra(c)})` : c.name), el("dd", c.definition));
}

function renderGrade(result) {
  const g = result.grade;
  $("grade-card").hidden = false;
  $("grade-score").textContent = `${Math.round(g.score * 100)} / 100`;
  $("grade-rating").textContent = g.rating;
  $("grade-rating").dataset.rating = g.rating;
  $("grade-due").textContent = `Saved. This question comes back ${new Date(result.attempt.due).toLocaleString()}.`;
  chips($("concepts-named"), g.concepts_named);
  definitions($("concepts-missed"), g.concepts_missed);
  const cov = g.concept_coverage == null ? "the reference names no graph concept"
    : `${Math.round(g.concept_coverage * 100)}% of the reference's concepts`;
  const sim = g.similarity;
  $("similarity").textContent =
    `MiniLM cosine ${sim.minilm_cosine.toFixed(2)}, ROUGE-L ${sim.rouge_l.toFixed(2)}; ${cov}.`;
  $("key-points").replaceChildren(...g.key_points.map((k) => {
    const li = el("li", k.text, k.covered ? "covered" : "missed");
    li.title = k.covered ? `covered (cosine ${k.match.toFixed(2)}): ${k.matched_sentence}`
      : `not covered (closest cosine ${k.match.toFixed(2)})`;
    li.prepend(el("span", k.covered ? "✓ " : "✗ ", "mark"));
    return li;
  }));
  definitions($("prerequisites"), g.prerequisites, (p) => `prerequisite of ${p.for.join(", ")}`);
  $("practise-next").replaceChildren(...g.practise_next.map((q) => {
    const li = el("li");
    const b = el("button", q.question, "link");
    b.type = "button";
    b.addEventListener("click", () => showQuestion(q));
    li.append(b, el("span", ` ${q.domain} · ${q.topic}`, "muted"));
    return li;
  }));
  $("reference-text").textContent = g.reference_answer;
  $("your-answer").textContent = result.answer;
  const judge = $("judge");
  judge.hidden = !result.judge_available;
  if (result.judge_available) {
    judge.textContent = "Asking the judge…";
    postJSON(`/api/attempts/${result.attempt.id}/judge`, { learner: learner() })
      .then(showJudge).catch((e) => { judge.textContent = `The judge failed: ${e.message}`; });
  }
}

function showJudge(j) {
  const box = $("judge");
  box.replaceChildren();
  const score = j.score == null ? `no score (${j.failure || "no reply"})` : `${j.score.toFixed(2)} / 5`;
  box.append(el("p", `G-Eval (${j.judge}, ${j.prompt} prompt, ${j.method}): ${score}`));
  const s = j.sanity || {};
  const verdict = s.state === "done" ? `sanity check: ${s.verdict} (${s.wins} of ${s.n_pairs} planted pairs)` : "";
  if (verdict) box.append(el("p", verdict, "muted"));
  if (s.warning) box.append(el("p", s.warning, "warning"));
}

async function loadAttempts() {
  const list = $("attempts");
  if (!learner()) { list.replaceChildren(el("li", "Choose a learner to keep your attempts.", "muted")); return; }
  try {
    const data = await api(`/api/progress?learner=${encodeURIComponent(learner())}`);
    list.replaceChildren(...data.attempts.slice(0, 10).map((a) => {
      const li = el("li");
      li.dataset.attempt = a.id;
      li.append(el("span", `${a.rating} ${Math.round(a.score * 100)}`, "rating"),
        el("span", ` ${a.question || a.question_id} `),
        el("span", new Date(a.created).toLocaleString(), "muted"));
      return li;
    }));
  } catch (e) {
    list.replaceChildren(el("li", "No attempts yet.", "muted"));
  }
}

async function submitAnswer() {
  notice("");
  if (!current) return;
  if (!learner()) { notice("type your name in the Learner box first, so your progress is kept"); return; }
  const answer = $("answer-text").value;
  if (!answer.trim()) { notice("the answer is empty: type an answer first"); return; }
  $("answer-button").disabled = true;
  $("answer-status").textContent = "grading…";
  try {
    const result = await postJSON("/api/answer", { learner: learner(), question_id: current.id, answer });
    localStorage.removeItem(draftKey());
    renderGrade(result);
    await loadAttempts();
  } catch (e) {
    notice(e.message);
  } finally {
    $("answer-button").disabled = false;
    $("answer-status").textContent = "";
  }
}

async function initInterview() {
  fillTopics();
  $("domain").addEventListener("change", fillTopics);
  $("pick-form").addEventListener("submit", (event) => { event.preventDefault(); nextQuestion("pick"); });
  $("due-button").addEventListener("click", () => nextQuestion("due"));
  $("answer-form").addEventListener("submit", (event) => { event.preventDefault(); submitAnswer(); });
  $("answer-text").addEventListener("input", () => {
    if (draftKey()) localStorage.setItem(draftKey(), $("answer-text").value);
  });
  const wanted = new URLSearchParams(location.search).get("q")
    || localStorage.getItem(`studyllama-current:${learner()}`);
  if (wanted) {
    try {
      showQuestion(await api(`/api/question/${encodeURIComponent(wanted)}`));
    } catch (e) { /* no longer in the study guide: start from the picker */ }
  }
  await loadAttempts();
}

// --- progress ---------------------------------------------------------------------------------------------
function initProgress() {
  $("import-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("import-file").files[0];
    const out = $("import-result");
    if (!file) { out.textContent = "choose a progress file first"; return; }
    const name = $("import-learner").value.trim();
    try {
      const r = await api(`/api/import${name ? `?learner=${encodeURIComponent(name)}` : ""}`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: await file.text(),
      });
      out.textContent = `Imported for ${r.learner}: ${r.attempts_added} of ${r.attempts_in_file} attempts were new, `
        + `${r.cards_taken} schedule entries taken.`;
    } catch (e) {
      out.textContent = e.message;
    }
  });
}

document.addEventListener("DOMContentLoaded", async () => {
  const page = document.body.dataset.page;
  try {
    const learnersLoaded = initLearner();
    if (page === "ask") initAsk();
    if (page === "interview") await initInterview();
    if (page === "progress") initProgress();
    await learnersLoaded;
  } catch (e) {
    notice(e.message);
  }
  document.body.dataset.ready = "1"; // the page is wired up (tests and scripts/bench_app.py wait for this)
});
