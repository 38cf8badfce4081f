// AdAgent's web page: sign in, send a script and an avatar to POST /api/ad-agent/create-stream, and follow the job's
// Server-Sent Events with fetch() (EventSource can neither POST nor send an Authorization header).
"use strict";

const TOKEN_KEY = "adagent.token";
const WHO_KEY = "adagent.who";
const FIELDS = ["script", "character_image", "character_name", "voice_id", "aspect_ratio", "resolution"];
const TERMINAL = new Set(["complete", "error", "cancelled"]);
const RECONNECTS = 3;

const $ = (id) => document.getElementById(id);
let avatarDataUri = null;
let running = null; // {jobId, lastEventId, cancelled} while a job is followed
let captionsBlobUrl = null;

/**
 * Parse one SSE frame (the lines between two blank lines) into {event, id, data}; null for a frame that carries no
 * data (comments such as keep-alives, or a lone `retry:`). Multi-line data is joined with "\n", as the spec says.
 */
function parseSseFrame(frame) {
  let event = "message";
  let id = null;
  const data = [];
  for (const line of frame.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }
  return data.length ? { event, id, data: data.join("\n") } : null;
}

/** Read an SSE response body, calling onFrame for each parsed frame until the body ends. */
async function readSse(body, onFrame) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    // Normalise CRLF and CR line ends; keep a trailing CR back in case its LF is in the next chunk.
    const held = buffer.endsWith("\r") ? "\r" : "";
    buffer = buffer.slice(0, buffer.length - held.length).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const parsed = parseSseFrame(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (parsed) onFrame(parsed);
    }
    buffer += held;
  }
}

// ---- credentials ------------------------------------------------------------------------------------------------

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function authHeaders(extra = {}) {
  return { Authorization: `Bearer ${token()}`, ...extra };
}

function showSignIn(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(WHO_KEY);
  for (const id of ["create", "progress", "result", "who", "sign-out"]) $(id).hidden = true;
  $("sign-in").hidden = false;
  $("login-error").textContent = message;
  $("username").focus();
}

function showApp() {
  $("sign-in").hidden = true;
  $("create").hidden = false;
  $("who").textContent = sessionStorage.getItem(WHO_KEY) || "Signed in";
  $("who").hidden = false;
  $("sign-out").hidden = false;
  $("script").focus();
}

async function errorDetail(response) {
  try {
    const body = await response.json();
    return { detail: String(body.detail ?? response.statusText), field: body.field ?? null };
  } catch {
    return { detail: `${response.status} ${response.statusText}`, field: null };
  }
}

async function signIn(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  const username = $("username").value.trim();
  let response;
  try {
    response = await fetch("/api/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password: $("password").value }),
    });
  } catch {
    $("login-error").textContent = "The server cannot be reached.";
    return;
  }
  if (!response.ok) {
    $("login-error").textContent = (await errorDetail(response)).detail;
    return;
  }
  const body = await response.json();
  sessionStorage.setItem(TOKEN_KEY, body.access_token);
  sessionStorage.setItem(WHO_KEY, `Signed in as ${username}`);
  $("password").value = "";
  showApp();
}

function useKey(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (!key.startsWith("adk_")) {
    $("key-error").textContent = "An API key starts with adk_.";
    return;
  }
  $("key-error").textContent = "";
  sessionStorage.setItem(TOKEN_KEY, key);
  sessionStorage.setItem(WHO_KEY, "Signed in with an API key");
  $("api-key").value = "";
  showApp();
}

// ---- the form ---------------------------------------------------------------------------------------------------

function clearErrors() {
  for (const field of FIELDS) {
    $(`${field}-error`).textContent = "";
    $(field).removeAttribute("aria-invalid");
  }
  $("form-error").textContent = "";
}

function showError({ detail, field }) {
  if (field && FIELDS.includes(field)) {
    $(`${field}-error`).textContent = detail;
    $(field).setAttribute("aria-invalid", "true");
    $(field).focus();
  } else {
    $("form-error").textContent = detail;
  }
}

function pickAvatar() {
  const file = $("character_image").files[0];
  avatarDataUri = null;
  $("avatar-preview").hidden = true;
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    avatarDataUri = reader.result;
    $("avatar-preview").src = avatarDataUri;
    $("avatar-preview").hidden = false;
  };
  reader.readAsDataURL(file);
}

function requestBody() {
  const body = { script: $("script").value };
  if (avatarDataUri) body.character_image = avatarDataUri;
  const name = $("character_name").value.trim();
  if (name) body.character_name = name;
  const voice = $("voice_id").value.trim();
  if (voice) body.voice_id = voice;
  body.aspect_ratio = $("aspect_ratio").value;
  body.resolution = $("resolution").value;
  return body;
}

function setRunning(on) {
  $("create-button").disabled = on;
  $("cancel-button").hidden = !on;
  $("cancel-button").disabled = false;
}

// ---- progress ---------------------------------------------------------------------------------------------------

function resetProgress() {
  $("progress-bar").value = 0;
  $("progress-text").textContent = "Starting…";
  $("job-error").textContent = "";
  markSteps(0);
  $("progress").hidden = false;
  $("progress").scrollIntoView({ block: "nearest" });
  $("result").hidden = true;
  $("video").removeAttribute("src");
  for (const track of $("video").querySelectorAll("track")) track.remove();
  if (captionsBlobUrl) URL.revokeObjectURL(captionsBlobUrl);
  captionsBlobUrl = null;
}

function markSteps(current, allDone = false) {
  for (const item of $("steps").children) {
    const step = Number(item.dataset.step);
    const state = allDone || step < current ? "done" : step === current ? "current" : "todo";
    item.dataset.state = state;
    item.querySelector(".sr").textContent = { done: " (done)", current: " (in progress)", todo: "" }[state];
    if (state === "current") item.setAttribute("aria-current", "step");
    else item.removeAttribute("aria-current");
  }
}

function onEvent({ event, id, data }) {
  let payload;
  try {
    payload = JSON.parse(data);
  } catch {
    return;
  }
  if (id !== null) running.lastEventId = id;
  if (typeof payload.progress === "number") $("progress-bar").value = payload.progress;
  if (typeof payload.step === "number") markSteps(payload.step);
  if (event === "complete") {
    $("progress-bar").value = 100;
    markSteps(6, true);
    $("progress-text").textContent = "Done: your video ad is ready.";
    showVideo(payload);
  } else if (event === "error") {
    $("job-error").textContent = `The job failed: ${payload.message}`;
    $("progress-text").textContent = "Failed.";
  } else if (event === "cancelled") {
    $("progress-text").textContent = "Cancelled.";
  } else if (payload.message) {
    $("progress-text").textContent = payload.message;
  }
  if (TERMINAL.has(event)) running.ended = true;
}

async function showVideo({ final_video_url: videoUrl, captions_url: captionsUrl }) {
  const video = $("video");
  video.src = videoUrl;
  $("download").href = videoUrl;
  $("result").hidden = false;
  $("result").scrollIntoView({ block: "nearest" });
  if (!captionsUrl) return;
  let src = captionsUrl;
  if (new URL(captionsUrl, location.href).origin !== location.origin) {
    // A <track> loads only same-origin (or CORS with crossorigin on the <video>, which would also need CORS for
    // the video itself): read the WebVTT with fetch instead and hand the track a blob: URL.
    try {
      const response = await fetch(captionsUrl);
      if (!response.ok) return;
      src = captionsBlobUrl = URL.createObjectURL(await response.blob());
    } catch {
      return;
    }
  }
  const track = document.createElement("track");
  track.kind = "captions";
  track.label = "English";
  track.srclang = "en";
  track.default = true;
  track.src = src;
  video.append(track);
}

// ---- running a job ----------------------------------------------------------------------------------------------

async function create(event) {
  event.preventDefault();
  if (running) return;
  clearErrors();
  let response;
  try {
    response = await fetch("/api/ad-agent/create-stream", {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify(requestBody()),
    });
  } catch {
    $("form-error").textContent = "The server cannot be reached.";
    return;
  }
  if (response.status === 401) return showSignIn("Your session has ended: sign in again.");
  if (!response.ok) return showError(await errorDetail(response));

  running = { jobId: response.headers.get("X-Job-Id"), lastEventId: null, ended: false };
  setRunning(true);
  resetProgress();
  try {
    await follow(response);
  } finally {
    setRunning(false);
    running = null;
  }
}

/** Follow the stream to its end; if the connection drops first, resume from the last event id (the job goes on). */
async function follow(response) {
  for (let attempt = 0; ; attempt++) {
    try {
      await readSse(response.body, onEvent);
    } catch {
      // the connection broke: fall through to resume
    }
    if (running.ended) return;
    if (attempt >= RECONNECTS || !running.jobId) break;
    await new Promise((resolve) => setTimeout(resolve, 1000 * (attempt + 1)));
    try {
      const headers = authHeaders({ Accept: "text/event-stream" });
      if (running.lastEventId) headers["Last-Event-ID"] = running.lastEventId;
      response = await fetch(`/api/ad-agent/jobs/${encodeURIComponent(running.jobId)}/events`, { headers });
    } catch {
      continue;
    }
    if (response.status === 401) return showSignIn("Your session has ended: sign in again.");
    if (!response.ok) break;
  }
  $("job-error").textContent = `Lost the connection to the server; job ${running.jobId} goes on without this page.`;
}

async function cancel() {
  if (!running || !running.jobId) return;
  $("cancel-button").disabled = true;
  const response = await fetch(`/api/ad-agent/jobs/${encodeURIComponent(running.jobId)}/cancel`, {
    method: "POST",
    headers: authHeaders(),
  }).catch(() => null);
  if (response && response.status === 401) return showSignIn("Your session has ended: sign in again.");
  if (!response || !response.ok) {
    $("job-error").textContent = response ? (await errorDetail(response)).detail : "The server cannot be reached.";
    $("cancel-button").disabled = false;
  }
  // on success the stream ends with its `cancelled` event
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", signIn);
  $("key-form").addEventListener("submit", useKey);
  $("sign-out").addEventListener("click", () => showSignIn());
  $("character_image").addEventListener("change", pickAvatar);
  $("ad-form").addEventListener("submit", create);
  $("cancel-button").addEventListener("click", cancel);
  if (token()) showApp();
  else showSignIn();
});
