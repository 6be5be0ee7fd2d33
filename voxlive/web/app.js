// voxlive browser client: one WebRTC call to the daemon on the same origin.
//
// Flow: GET /config -> microphone -> RTCPeerConnection + "events" data channel
// -> offer (after ICE gathering, no trickle) -> POST /offer -> answer.
// Everything the server tells us during the call arrives as JSON on the data channel.
'use strict';

const ICE_GATHERING_CAP_MS = 3000;   // send the offer with whatever candidates we have by then
const DISCONNECT_GRACE_MS = 5000;    // 'disconnected' often heals by itself; only then call it lost
const KIOSK_RETRY_MS = 3000;
const CONFIG_TIMEOUT_MS = 3000;
const MAX_EVENT_ERROR_LINES = 5;     // keep the banner short if a backend keeps failing

const MIC_CONSTRAINTS = {
  audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
};
const CAMERA_CONSTRAINTS = { video: { width: { ideal: 640 }, height: { ideal: 480 } } };

// [event field, column title]; the latency table header and rows are both built from this.
const LATENCY_COLUMNS = [
  ['voice_to_voice_ms', 'Voice-to-voice'],
  ['endpointing_ms', 'Endpointing'],
  ['stt_ms', 'STT'],
  ['vision_ms', 'Vision'],
  ['llm_first_token_ms', 'LLM 1st token'],
  ['first_sentence_ms', '1st sentence'],
  ['tts_first_audio_ms', 'TTS 1st audio'],
  ['output_queue_ms', 'Out queue'],
];

const ui = {
  call: document.getElementById('call'),
  hangup: document.getElementById('hangup'),
  status: document.getElementById('status'),
  assistantState: document.getElementById('assistant-state'),
  error: document.getElementById('error'),
  callInfo: document.getElementById('call-info'),
  transcript: document.getElementById('transcript'),
  latency: document.getElementById('latency'),
  audio: document.getElementById('remote-audio'),
  camera: document.getElementById('camera'),
};

// A call token (from POST /token on a daemon that needs keys) comes in this page's URL,
// ?token=vxt_...: single-use and short-lived, so no long-lived API key sits in the page.
const CALL_TOKEN = new URLSearchParams(window.location.search).get('token');

function authHeaders() {
  return CALL_TOKEN ? { Authorization: `Bearer ${CALL_TOKEN}` } : {};
}

// An error whose message is already written for the user (shown as is).
class UserError extends Error {}

// Everything that belongs to the current call; replaced wholesale on teardown.
function emptySession() {
  return { pc: null, dc: null, mic: null, cam: null, disconnectTimer: null };
}
let session = emptySession();

// Bumped by every call() and hangup(); an in-flight call() that finds the number changed
// after an await knows it was cancelled and must not touch the UI any more.
let attempt = 0;

let kioskMode = false;
let kioskRetryTimer = null;
let userHungUp = false;

// Transcript entries by "role:turn", so streamed updates edit the same element.
const transcriptEntries = new Map();

// Public hook for automated tests (and curious humans in the console).
const voxlive = {
  pc: null,
  events: [],          // every parsed event object received, in order, across calls
  remoteStream: null,
  call,
  hangup,
  send,
  receive: (data) => onChannelMessage(data),  // as if `data` came on the events channel
};
window.voxlive = voxlive;

// ---------------------------------------------------------------------------
// Call lifecycle
// ---------------------------------------------------------------------------

function callActive() {
  const state = document.body.dataset.callState;
  return state === 'connecting' || state === 'connected';
}

// Starts a call. Resolves true once the answer is applied (not when media flows:
// watch document.body.dataset.callState for 'connected'); false if it failed or was
// cancelled. Never rejects: failures are shown in the page instead.
async function call() {
  if (callActive()) return false;
  const myAttempt = ++attempt;
  const stillMine = () => myAttempt === attempt;
  userHungUp = false;
  clearKioskRetry();
  resetCallUi();
  setCallState('connecting');

  try {
    // Fetched per call, not once: TURN credentials in it may be short-lived.
    const config = await fetchConfig();
    if (!stillMine()) return false;

    const mic = await openMicrophone();
    if (!stillMine()) {
      stopStream(mic);
      return false;
    }
    session.mic = mic;

    const pc = createPeerConnection(config.ice_servers);
    session.pc = pc;
    voxlive.pc = pc;
    // The server only creates its side of the channel from the offer, so it must exist first.
    session.dc = openEventsChannel(pc);
    // addTrack gives a sendrecv audio m-line: the answer can use it to send the voice back.
    mic.getAudioTracks().forEach((track) => pc.addTrack(track, mic));
    // The camera is optional: without it (or if it fails) the call is audio-only.
    if (ui.camera.checked) {
      session.cam = await openCamera();
      if (!stillMine()) return false;
      if (session.cam) session.cam.getVideoTracks().forEach((t) => pc.addTrack(t, session.cam));
    }

    await pc.setLocalDescription(await pc.createOffer());
    // No trickle ICE on the server: all candidates have to be in the offer SDP.
    await waitForIceGathering(pc, ICE_GATHERING_CAP_MS);
    if (!stillMine()) return false;

    const answer = await postOffer(pc.localDescription);
    if (!stillMine()) return false;
    await pc.setRemoteDescription(answer);
    return true;
  } catch (err) {
    if (!stillMine()) return false;
    console.error('voxlive: call failed', err);
    failCall(err instanceof UserError ? err.message : `Could not start the call: ${err.message || err}`);
    return false;
  }
}

// Ends the call on the user's request. Also cancels a call that is still connecting.
function hangup() {
  userHungUp = true;
  clearKioskRetry();
  teardown();
  setCallState('closed');
}

// Sends one JSON message on the data channel; false if the channel is not open.
function send(obj) {
  const dc = session.dc;
  if (!dc || dc.readyState !== 'open') return false;
  dc.send(JSON.stringify(obj));
  return true;
}

// The call could not start or was lost: show why and release everything.
function failCall(message) {
  teardown();
  setError(message);
  setCallState('failed');
  scheduleKioskRetry();
}

// The server ended an established call (its side of the data channel closed).
function remoteEnded() {
  teardown();
  ui.callInfo.textContent = 'The call was ended by the server.';
  setCallState('closed');
  scheduleKioskRetry();
}

// Releases the pc, the channel and the microphone. Handlers are detached first so
// closing does not feed events back into the state machine, and any call() still in
// flight is cancelled so it cannot overwrite the reason shown for this ending.
function teardown() {
  attempt++;
  const { pc, dc, mic, cam, disconnectTimer } = session;
  clearTimeout(disconnectTimer);
  if (dc) {
    dc.onopen = dc.onclose = dc.onmessage = null;
    try { dc.close(); } catch (e) { /* already closed */ }
  }
  if (pc) {
    pc.ontrack = pc.onconnectionstatechange = null;
    pc.close();
  }
  stopStream(mic);
  stopStream(cam);
  ui.audio.srcObject = null;
  session = emptySession();
  voxlive.pc = null;
  voxlive.remoteStream = null;
  setAssistantState('');
  setUserSpeaking(false);
}

function stopStream(stream) {
  if (stream) stream.getTracks().forEach((track) => track.stop());
}

// ---------------------------------------------------------------------------
// Signalling helpers
// ---------------------------------------------------------------------------

// GET /config; on any failure fall back to no ICE servers (host candidates only).
// Deliberately never a public STUN server: the daemon is meant to stay on the local network.
async function fetchConfig() {
  const fallback = { ice_servers: [], profile: null, kiosk: false };
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), CONFIG_TIMEOUT_MS);
  try {
    const resp = await fetch('/config', {
      cache: 'no-store', signal: abort.signal, headers: authHeaders(),
    });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const body = await resp.json();
    return {
      ice_servers: Array.isArray(body.ice_servers) ? body.ice_servers : [],
      profile: body.profile ?? null,
      kiosk: body.kiosk === true,
    };
  } catch (err) {
    console.warn('voxlive: /config unavailable, using no ICE servers', err);
    return fallback;
  } finally {
    clearTimeout(timer);
  }
}

// Opens the microphone, turning browser errors into sentences a person can act on.
async function openMicrophone() {
  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
    throw new UserError(window.isSecureContext
      ? 'This browser cannot record audio (getUserMedia is not available).'
      : 'The microphone is blocked on this page: getUserMedia needs https or localhost. ' +
        'Open voxlive over https or on localhost.');
  }
  try {
    return await navigator.mediaDevices.getUserMedia(MIC_CONSTRAINTS);
  } catch (err) {
    throw new UserError(microphoneErrorMessage(err));
  }
}

// The daemon grabs a frame only when it needs to look; a small resolution is plenty.
async function openCamera() {
  try {
    return await navigator.mediaDevices.getUserMedia(CAMERA_CONSTRAINTS);
  } catch (err) {
    addErrorLine(`Camera unavailable (${err.name || err}); the call goes on without video.`);
    return null;
  }
}

function microphoneErrorMessage(err) {
  switch (err && err.name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':  // older Chrome
      return "Microphone access was denied: allow it in the browser's site settings and press Call again";
    case 'SecurityError':
      return 'The microphone is blocked on this page: getUserMedia needs https or localhost.';
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return 'No microphone was found: connect one (or enable it in system settings) and press Call again.';
    case 'NotReadableError':
    case 'TrackStartError':
      return 'The microphone could not be opened: another application may be using it.';
    default:
      return `Could not open the microphone: ${(err && err.message) || err}`;
  }
}

function createPeerConnection(iceServers) {
  let pc;
  try {
    pc = new RTCPeerConnection({ iceServers });
  } catch (err) {
    // A malformed entry in /config must not make calls impossible on the local network.
    console.warn('voxlive: ice_servers rejected by the browser, using none', err);
    pc = new RTCPeerConnection({ iceServers: [] });
  }
  pc.ontrack = onRemoteTrack;
  pc.onconnectionstatechange = () => onConnectionStateChange(pc);
  return pc;
}

function openEventsChannel(pc) {
  const dc = pc.createDataChannel('events');
  let opened = false;
  dc.onopen = () => {
    opened = true;
    updateConnected();
  };
  dc.onmessage = (msg) => onChannelMessage(msg.data);
  // Only a channel that was open counts as "the server hung up"; a channel that never
  // opened is covered by the connection state handling.
  dc.onclose = () => {
    if (opened) remoteEnded();
  };
  return dc;
}

// Resolves when ICE gathering is complete, or after capMs, whichever comes first.
function waitForIceGathering(pc, capMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', onChange);
      resolve();
    };
    const onChange = () => {
      if (pc.iceGatheringState === 'complete') finish();
    };
    const timer = setTimeout(finish, capMs);
    pc.addEventListener('icegatheringstatechange', onChange);
  });
}

// POST /offer; returns the answer description or throws a UserError with the server's message.
async function postOffer(description) {
  let resp;
  try {
    resp = await fetch('/offer', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...authHeaders() },
      body: JSON.stringify({ sdp: description.sdp, type: 'offer' }),
    });
  } catch (err) {
    throw new UserError(`Could not reach the voxlive server: ${err.message || err}`);
  }
  let body = null;
  try {
    body = await resp.json();
  } catch (e) {
    // Not JSON (a proxy error page, say): reported below by status code.
  }
  if (!resp.ok) {
    throw new UserError((body && body.error) || `The server refused the call (HTTP ${resp.status}).`);
  }
  if (!body || typeof body.sdp !== 'string') {
    throw new UserError('The server sent an answer that is not valid.');
  }
  return { type: 'answer', sdp: body.sdp };
}

// ---------------------------------------------------------------------------
// Connection state
// ---------------------------------------------------------------------------

function onRemoteTrack(event) {
  if (event.track.kind !== 'audio') return;
  const stream = event.streams[0] || new MediaStream([event.track]);
  voxlive.remoteStream = stream;
  ui.audio.srcObject = stream;
  // autoplay can still be refused (no user gesture, e.g. kiosk auto-call); say so in the console.
  ui.audio.play().catch((err) => console.warn('voxlive: audio playback blocked', err));
}

function onConnectionStateChange(pc) {
  const state = pc.connectionState;
  if (state === 'connected') {
    clearTimeout(session.disconnectTimer);
    session.disconnectTimer = null;
    updateConnected();
  } else if (state === 'disconnected') {
    // Network blips recover on their own; give it a few seconds before giving up.
    if (!session.disconnectTimer) {
      session.disconnectTimer = setTimeout(() => {
        failCall('The connection to the voxlive server was lost.');
      }, DISCONNECT_GRACE_MS);
    }
  } else if (state === 'failed') {
    // 'failed' does not recover without an ICE restart, which the server does not do.
    failCall('The connection to the voxlive server failed.');
  }
}

// "connected" needs both: media transport up AND the events channel open.
function updateConnected() {
  const { pc, dc } = session;
  if (pc && dc && pc.connectionState === 'connected' && dc.readyState === 'open') {
    setCallState('connected');
  }
}

// ---------------------------------------------------------------------------
// Events from the server
// ---------------------------------------------------------------------------

const EVENT_HANDLERS = new Map([
  ['ready', (ev) => showCallInfo(ev.call_id, ev.profile)],
  ['state', (ev) => setAssistantState(ev.state)],
  ['speech_started', () => setUserSpeaking(true)],
  ['speech_stopped', () => setUserSpeaking(false)],
  ['user_transcript', (ev) => updateUserEntry(ev.turn, ev.text, ev.language)],
  ['assistant_text', (ev) => updateAssistantEntry(ev.turn, ev.text, ev.final)],
  ['turn_latency', (ev) => updateLatencyRow(ev)],
  ['interrupted', (ev) => markInterrupted(ev.turn, ev.heard_text)],
  ['barge_in', (ev) => noteBargeIn(ev.turn, ev.onset_to_silence_ms)],
  ['resumed', () => {}],
  ['vision', (ev) => showVision(ev)],
  ['tool_call', (ev) => showToolCall(ev)],
  ['user_emotion', (ev) => noteEmotion(ev.turn, ev.label, ev.confidence)],
  ['turn_committed', () => {}],
  ['turn_judged', () => {}],
  ['reply_played', () => {}],
  ['reply_cancelled', () => {}],
  ['tool_calls', () => {}],  // a Realtime client's own tools: the page offers none
  ['error', (ev) => addErrorLine(ev.message, ev.stage)],
  ['pong', () => {}],
  // The daemon ended the call (a limit: no audio, maximum duration; or a fault).
  ['call_ended', (ev) => failCall(`The call was ended: ${ev.reason}`)],
]);

function onChannelMessage(data) {
  if (typeof data !== 'string') {
    console.warn('voxlive: ignoring binary data channel message');
    return;
  }
  let ev;
  try {
    ev = JSON.parse(data);
  } catch (err) {
    console.warn('voxlive: ignoring non-JSON data channel message', data);
    return;
  }
  if (ev === null || typeof ev !== 'object') {
    console.warn('voxlive: ignoring non-object event', ev);
    return;
  }
  voxlive.events.push(ev);
  const handler = EVENT_HANDLERS.get(ev.type);
  if (handler) handler(ev);
  else console.log('voxlive: ignoring unknown event', ev);
}

// ---------------------------------------------------------------------------
// UI updates
// ---------------------------------------------------------------------------

function setCallState(state) {
  document.body.dataset.callState = state;
  ui.status.textContent = state;
  const active = state === 'connecting' || state === 'connected';
  ui.call.disabled = active;
  ui.hangup.disabled = !active;  // enabled while connecting too, so a stuck call can be cancelled
}

function setAssistantState(state) {
  ui.assistantState.textContent = state || '';
  ui.assistantState.dataset.state = state || '';
}

function setUserSpeaking(speaking) {
  document.body.dataset.userSpeaking = speaking ? 'true' : 'false';
}

function showCallInfo(callId, profile) {
  const parts = [];
  if (callId) parts.push(`Call ${callId}`);
  if (profile) parts.push(`profile ${profile}`);
  ui.callInfo.textContent = parts.join(' · ');
}

// Clears what belonged to the previous call. The transcript is kept after hang-up
// (so it can still be read) and only cleared here, when the next call starts.
function resetCallUi() {
  clearError();
  ui.callInfo.textContent = '';
  ui.transcript.replaceChildren();
  transcriptEntries.clear();
  ui.latency.tBodies[0].replaceChildren();
}

function setError(message) {
  ui.error.replaceChildren(errorLine(message));
  ui.error.hidden = false;
}

// Errors reported by the server during a call: appended, the call stays up.
function addErrorLine(message, stage) {
  ui.error.append(errorLine(message || 'Unknown error', stage));
  while (ui.error.childElementCount > MAX_EVENT_ERROR_LINES) ui.error.firstElementChild.remove();
  ui.error.hidden = false;
}

function clearError() {
  ui.error.replaceChildren();
  ui.error.hidden = true;
}

function errorLine(message, stage) {
  const line = document.createElement('p');
  line.className = 'error-line';
  line.textContent = message;
  if (stage) {
    const tag = document.createElement('span');
    tag.className = 'stage';
    tag.textContent = ` (${stage})`;
    line.append(tag);
  }
  return line;
}

// --- transcript -------------------------------------------------------------

// Returns the entry for (role, turn), creating it if needed. A user entry is placed
// before the assistant entry of the same turn, in case the reply text arrived first.
function transcriptEntry(role, turn) {
  const key = `${role}:${turn}`;
  let entry = transcriptEntries.get(key);
  if (entry) return entry;

  entry = document.createElement('div');
  entry.className = `entry ${role}`;
  entry.dataset.turn = String(turn);
  const reply = role === 'user' ? transcriptEntries.get(`assistant:${turn}`) : null;
  withAutoScroll(() => ui.transcript.insertBefore(entry, reply || null));
  transcriptEntries.set(key, entry);
  return entry;
}

// `language` comes only when the words were heard in another language than the profile's.
function updateUserEntry(turn, text, language) {
  const entry = transcriptEntry('user', turn);
  withAutoScroll(() => {
    entry.textContent = language ? `[${language}] ${text || ''}` : (text || '');
    if (language) entry.lang = language;
  });
}

// `text` is the whole reply so far, so it replaces the entry's text each time.
function updateAssistantEntry(turn, text, final) {
  const entry = transcriptEntry('assistant', turn);
  // After an interruption only what was actually heard stays; late text would contradict it.
  if (entry.classList.contains('interrupted')) return;
  withAutoScroll(() => {
    entry.textContent = text || '';
    entry.dataset.final = final ? 'true' : 'false';
  });
}

function markInterrupted(turn, heardText) {
  const entry = transcriptEntry('assistant', turn);
  withAutoScroll(() => {
    entry.classList.add('interrupted');
    entry.textContent = heardText || '';
    entry.dataset.final = 'true';
  });
}

// How the user's turn sounded, shown as a small badge on their transcript entry.
function noteEmotion(turn, label, confidence) {
  const entry = transcriptEntry('user', turn);
  if (!label || label === 'unknown') return;
  entry.dataset.emotion = label;
  entry.title = `sounded ${label} (confidence ${Math.round((confidence || 0) * 100)}%)`;
}

// What the assistant saw through the camera: a thumbnail and its caption.
function showVision(ev) {
  const entry = transcriptEntry('vision', `${ev.turn}-${voxlive.events.length}`);
  withAutoScroll(() => {
    const parts = [];
    if (ev.thumbnail && ev.thumbnail.startsWith('data:image/jpeg;base64,')) {
      const img = document.createElement('img');
      img.src = ev.thumbnail;
      img.alt = 'what the camera showed';
      parts.push(img);
    }
    const caption = document.createElement('span');
    caption.textContent = ev.caption || '';
    parts.push(caption);
    entry.replaceChildren(...parts);
  });
}

// A tool the assistant called (voxlive/tools): name, arguments, status, time, error, and
// any picture it made. Each call has one entry, updated as its status changes.
const TOOL_IMAGE = /^data:image\/(png|jpeg|gif|webp);base64,/;
function showToolCall(ev) {
  const entry = transcriptEntry('tool', `${ev.turn}-${ev.id}`);
  withAutoScroll(() => {
    entry.dataset.status = ev.status || '';
    const line = document.createElement('span');
    const time = ev.duration_ms === undefined ? '' : `, ${formatMs(ev.duration_ms)} ms`;
    line.textContent = `tool ${ev.name}(${ev.arguments || ''}): ${ev.status}${time}`
      + (ev.error ? ` (${ev.error})` : '');
    const parts = [line];
    for (const src of ev.images || []) {
      if (!TOOL_IMAGE.test(src)) continue;
      const img = document.createElement('img');
      img.src = src;
      img.alt = `picture from the ${ev.name} tool`;
      parts.push(img);
    }
    entry.replaceChildren(...parts);
  });
}

// How fast the reply went quiet under the user's voice, shown on hover and in the label.
function noteBargeIn(turn, ms) {
  const entry = transcriptEntry('assistant', turn);
  entry.dataset.bargeInMs = formatMs(ms);
  entry.title = `went quiet ${formatMs(ms)} ms after you started talking`;
}

// Keeps the newest text in view, unless the user has scrolled up to read older turns.
function withAutoScroll(update) {
  const box = ui.transcript;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  update();
  if (atBottom) box.scrollTop = box.scrollHeight;
}

// --- latency table ----------------------------------------------------------

function buildLatencyHeader() {
  const row = document.createElement('tr');
  for (const title of ['Turn', ...LATENCY_COLUMNS.map(([, t]) => t)]) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = title;
    row.append(th);
  }
  ui.latency.tHead.replaceChildren(row);
}

// One row per turn; a repeated event for the same turn updates its row.
function updateLatencyRow(ev) {
  const body = ui.latency.tBodies[0];
  const turn = String(ev.turn);
  let row = Array.from(body.rows).find((r) => r.dataset.turn === turn);
  if (!row) {
    row = document.createElement('tr');
    row.dataset.turn = turn;
    body.append(row);
  }
  const cells = [cell('turn', turn)];
  for (const [field] of LATENCY_COLUMNS) cells.push(cell(field, formatMs(ev[field])));
  row.replaceChildren(...cells);
}

function cell(field, text) {
  const td = document.createElement('td');
  td.dataset.field = field;
  td.textContent = text;
  return td;
}

function formatMs(value) {
  return typeof value === 'number' && Number.isFinite(value) ? String(Math.round(value)) : '—';
}

// ---------------------------------------------------------------------------
// Kiosk mode: call on load, redial when the call drops.
// ---------------------------------------------------------------------------

function enableKiosk() {
  kioskMode = true;
  document.body.classList.add('kiosk');
}

function scheduleKioskRetry() {
  if (!kioskMode || userHungUp || kioskRetryTimer) return;
  kioskRetryTimer = setTimeout(() => {
    kioskRetryTimer = null;
    call();
  }, KIOSK_RETRY_MS);
}

function clearKioskRetry() {
  clearTimeout(kioskRetryTimer);
  kioskRetryTimer = null;
}

// ---------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------

async function init() {
  buildLatencyHeader();
  setCallState('idle');
  setUserSpeaking(false);
  ui.call.addEventListener('click', () => { call(); });
  ui.hangup.addEventListener('click', hangup);
  // Closing the pc tells the server at once that we left, instead of after a timeout.
  window.addEventListener('pagehide', teardown);

  // The URL flag needs no round trip; otherwise ask the server.
  const params = new URLSearchParams(window.location.search);
  if (params.get('camera') === '1') ui.camera.checked = true;
  const urlKiosk = params.get('kiosk') === '1';
  if (urlKiosk || (await fetchConfig()).kiosk) {
    enableKiosk();
    call();
  }
}

init();
