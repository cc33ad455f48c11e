// Files in the chat: image previews, audio and video players, document links; the waveform of
// an audio drawn from the file itself (`audio_waveform`, Web Audio + canvas); and the voice-note
// recorder (`audio_recorder_plugin`, MediaRecorder).

import { t } from "./common.js";
import { el, icon } from "./attendance-util.js";

const FILE_KINDS = new Set(["image", "sticker", "audio", "video", "document"]);

export const hasFile = (message) => FILE_KINDS.has(message.kind);

/**
 * The element showing a message's file from `url`. A file that is not (yet) stored answers 404:
 * the element then says the media is unavailable.
 */
export function mediaElement(message, url, { waveform } = {}) {
  const unavailable = () => el("span", { class: "media-missing", text: t("attendance.chat.media_unavailable") });
  switch (message.kind) {
    case "image":
    case "sticker": {
      const img = el("img", {
        src: url,
        alt: message.body || t("attendance.chat.image"),
        loading: "lazy",
        class: message.kind === "sticker" ? "media-sticker" : "media-image",
      });
      img.addEventListener("error", () => link.replaceWith(unavailable()), { once: true });
      const link = el("a", { href: url, target: "_blank", rel: "noopener", class: "media-link" }, img);
      return link;
    }
    case "audio":
      return audioPlayer(url, waveform, unavailable);
    case "video": {
      const video = el("video", { src: url, controls: true, preload: "metadata", class: "media-video" });
      video.addEventListener("error", () => video.replaceWith(unavailable()), { once: true });
      return video;
    }
    default:
      return el(
        "a",
        { href: url, class: "media-document", download: `file-${message.id}` },
        icon("file"),
        el("span", { text: t("attendance.chat.document") }),
      );
  }
}

function audioPlayer(url, waveform, unavailable) {
  const audio = el("audio", { src: url, controls: !waveform, preload: "metadata", class: "media-audio" });
  audio.addEventListener("error", () => box.replaceWith(unavailable()), { once: true });
  const box = el("div", { class: "audio-box" }, audio);
  if (waveform) {
    const button = el("button", { type: "button", class: "icon-button audio-play", "aria-label": t("attendance.chat.play") }, icon("play"));
    const canvas = el("canvas", { class: "waveform", width: 220, height: 36, role: "img", "aria-label": t("attendance.chat.waveform") });
    const time = el("span", { class: "audio-time", text: "0:00" });
    button.addEventListener("click", () => (audio.paused ? audio.play().catch(() => {}) : audio.pause()));
    audio.addEventListener("play", () => {
      button.replaceChildren(icon("pause"));
      button.setAttribute("aria-label", t("attendance.chat.pause_audio"));
    });
    audio.addEventListener("pause", () => {
      button.replaceChildren(icon("play"));
      button.setAttribute("aria-label", t("attendance.chat.play"));
    });
    box.append(button, canvas, time);
    drawWaveform(canvas, url, audio, time).catch(() => {
      // Undecodable here: fall back to the browser's own player.
      audio.controls = true;
      button.remove();
      canvas.remove();
      time.remove();
    });
  }
  return box;
}

let sharedContext = null;

/** Peaks of `bars` slices of the first channel, 0..1. */
export function peaks(samples, bars) {
  const out = new Array(bars).fill(0);
  const step = Math.max(1, Math.floor(samples.length / bars));
  let loudest = 0;
  for (let bar = 0; bar < bars; bar += 1) {
    let peak = 0;
    const end = Math.min(samples.length, (bar + 1) * step);
    for (let i = bar * step; i < end; i += 1) {
      const value = Math.abs(samples[i]);
      if (value > peak) peak = value;
    }
    out[bar] = peak;
    if (peak > loudest) loudest = peak;
  }
  return loudest > 0 ? out.map((p) => p / loudest) : out;
}

const minutes = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;

/** Decodes the file and draws its waveform; clicking it seeks, playback colours it. */
export async function drawWaveform(canvas, url, audio, timeLabel) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const bytes = await response.arrayBuffer();
  const Context = window.AudioContext || window.webkitAudioContext;
  sharedContext ??= new Context();
  const buffer = await sharedContext.decodeAudioData(bytes);
  const bars = peaks(buffer.getChannelData(0), 44);
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.width;
  const height = canvas.height;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  const styles = getComputedStyle(canvas);
  const played = styles.getPropertyValue("--wave-played").trim() || "#0b6e4f";
  const rest = styles.getPropertyValue("--wave-rest").trim() || "#9aa7b1";
  const paint = () => {
    const progress = audio.duration ? audio.currentTime / audio.duration : 0;
    g.clearRect(0, 0, width, height);
    const slot = width / bars.length;
    bars.forEach((peak, i) => {
      const h = Math.max(2, peak * (height - 4));
      g.fillStyle = (i + 0.5) / bars.length <= progress ? played : rest;
      g.fillRect(i * slot + 1, (height - h) / 2, Math.max(1, slot - 2), h);
    });
    timeLabel.textContent = minutes(audio.currentTime || buffer.duration);
  };
  paint();
  timeLabel.textContent = minutes(buffer.duration);
  audio.addEventListener("timeupdate", paint);
  audio.addEventListener("ended", paint);
  canvas.addEventListener("click", (event) => {
    const box = canvas.getBoundingClientRect();
    const duration = audio.duration || buffer.duration;
    audio.currentTime = Math.max(0, Math.min(1, (event.clientX - box.left) / box.width)) * duration;
    paint();
  });
  canvas.dataset.drawn = "true";
}

/** Records a voice note with the microphone. */
export class Recorder {
  static supported() {
    return Boolean(navigator.mediaDevices?.getUserMedia && window.MediaRecorder);
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    // The server accepts Ogg and WebM audio; take the first one this browser records.
    const type = ["audio/ogg;codecs=opus", "audio/webm;codecs=opus", "audio/webm"].find((m) =>
      MediaRecorder.isTypeSupported(m),
    );
    this.recorder = new MediaRecorder(this.stream, type ? { mimeType: type } : undefined);
    this.chunks = [];
    this.recorder.addEventListener("dataavailable", (event) => {
      if (event.data.size > 0) this.chunks.push(event.data);
    });
    this.started = Date.now();
    this.recorder.start();
  }

  elapsed() {
    return minutes((Date.now() - (this.started ?? Date.now())) / 1000);
  }

  /** Stops and answers the note as a File (`voice-note.ogg` or `.webm`). */
  stop() {
    return new Promise((resolve) => {
      this.recorder.addEventListener(
        "stop",
        () => {
          this.release();
          const base = (this.recorder.mimeType || "audio/webm").split(";")[0];
          const extension = base === "audio/ogg" ? "ogg" : "webm";
          resolve(new File(this.chunks, `voice-note.${extension}`, { type: base }));
        },
        { once: true },
      );
      this.recorder.stop();
    });
  }

  cancel() {
    if (this.recorder?.state === "recording") this.recorder.stop();
    this.release();
  }

  release() {
    for (const track of this.stream?.getTracks() ?? []) track.stop();
  }
}
