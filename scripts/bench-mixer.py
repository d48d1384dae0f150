#!/usr/bin/env python3
"""Measures a mixer on a running streamgate: the server's CPU while it mixes N publishers into one
picture, and the latency the mixer adds end to end.

Publishers are ffmpeg over RTMP, each looping a clip encoded beforehand (a picture that flips
black/white every second, and a tone), so the load generator spends no CPU on encoding.
CPU is the server process's user+system time over a window, from /proc, in % of one core.
Latency: two ffmpeg viewers decode the same publisher directly and through the mix (both over
RTMP); the moment each sees a flip is noted, and the mix's lag behind the direct view is what the
mixer adds (decode, compose, encode, its latency budget).

    scripts/bench-mixer.py --server-pid PID --http 127.0.0.1:18100 --rtmp 127.0.0.1:19400 \
        --inputs 3 --size 1280x720 --fps 30 --window 20
"""
import argparse
import json
import os
import statistics
import subprocess
import threading
import time
import urllib.request

SW, SH = 32, 18  # viewers decode to this size: only the brightness of the first tile matters


def post(http, path, body):
    req = urllib.request.Request(
        f"http://{http}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


def make_clip(path, hz, size):
    """A 20 s clip (a picture that flips black/white every second, a tone), encoded once so that
    publishing it costs the load generator no encoding on the cores the server measures on."""
    flip = (f"color=black:s={size}:r=30,"
            "drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='lt(mod(t\\,2)\\,1)'")
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", flip,
         "-f", "lavfi", "-i", f"sine=frequency={hz}:sample_rate=44100", "-t", "20",
         "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30",
         "-pix_fmt", "yuv420p", "-c:a", "aac", path], check=True, stdin=subprocess.DEVNULL)


def publisher(rtmp, name, clip):
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", clip,
         "-c", "copy", "-f", "flv", f"rtmp://{rtmp}/live/{name}"],
        stdin=subprocess.DEVNULL)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Flips:
    """Wall-clock times at which a viewer saw the sampled area turn white."""

    def __init__(self, rtmp, name, x, y):
        self.times = []
        self.frames = []  # wall-clock time of every frame, for the rate the view held
        # passthrough: one output frame per decoded frame, as it arrives (ffmpeg's default would
        # duplicate and drop frames to a constant rate, blurring when a flip was seen).
        self.proc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-fflags", "nobuffer",
             "-probesize", "32768", "-analyzeduration", "500000",
             "-i", f"rtmp://{rtmp}/live/{name}", "-an", "-vf", f"scale={SW}:{SH}",
             "-fps_mode", "passthrough", "-pix_fmt", "gray", "-f", "rawvideo", "pipe:1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        self.x, self.y = x, y
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        white = False
        while True:
            frame = self.proc.stdout.read(SW * SH)
            if len(frame) < SW * SH:
                return
            now = time.monotonic()
            self.frames.append(now)
            v = frame[int(self.y * SH) * SW + int(self.x * SW)]
            if not white and v > 180:
                self.times.append(now)
            white = v > 180 if not white else v > 70

    def stop(self):
        self.proc.kill()

    def fps(self, since):
        """Frames per second over the part of the window after `since` (past start-up)."""
        seen = [t for t in self.frames if t >= since]
        if len(seen) < 2:
            return 0.0
        return (len(seen) - 1) / (seen[-1] - seen[0])


def lag(direct, mixed):
    """For each flip seen directly, how much later the mix showed it. A flip comes every 2 s, so
    any lag under 1.9 s pairs a flip with itself and not with the next one."""
    out = []
    for t in direct:
        later = [m - t for m in mixed if 0 <= m - t < 1.9]
        if later:
            out.append(min(later))
    return out


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--server-pid", type=int, required=True)
    a.add_argument("--http", default="127.0.0.1:8080")
    a.add_argument("--rtmp", default="127.0.0.1:1935")
    a.add_argument("--inputs", type=int, default=3)
    a.add_argument("--size", default="1280x720", help="the mix's picture")
    a.add_argument("--input-size", default="1280x720", help="each publisher's picture")
    a.add_argument("--fps", type=int, default=30)
    a.add_argument("--window", type=float, default=20)
    o = a.parse_args()
    w, h = (int(v) for v in o.size.split("x"))
    names = [f"bench-in-{i}" for i in range(o.inputs)]
    clips = []
    for i in range(o.inputs):
        clip = f"/tmp/bench-mixer-{o.input_size}-{i}.mp4"
        if not os.path.exists(clip):
            make_clip(clip, 400 + 300 * i, o.input_size)
        clips.append(clip)
    pubs = [publisher(o.rtmp, n, clips[i]) for i, n in enumerate(names)]
    try:
        time.sleep(3)
        base = cpu_seconds(o.server_pid)
        time.sleep(o.window / 2)
        idle = (cpu_seconds(o.server_pid) - base) / (o.window / 2) * 100
        post(o.http, "/rest-api/mixer/startup", {
            "uri": "mixer://bench", "localStreamName": "bench-mix", "mixerVideoWidth": w,
            "mixerVideoHeight": h, "mixerVideoFps": o.fps, "mixerLayoutClass": "grid"})
        for n in names:
            post(o.http, "/rest-api/mixer/add", {"uri": "mixer://bench", "remoteStreamName": n})
        time.sleep(3)
        base = cpu_seconds(o.server_pid)
        time.sleep(o.window)
        mixing = (cpu_seconds(o.server_pid) - base) / o.window * 100
        # The first input's tile is the top-left cell of the grid: sample its centre.
        cols = 1
        while cols * cols < o.inputs:
            cols += 1
        rows = -(-o.inputs // cols)
        direct = Flips(o.rtmp, names[0], 0.5, 0.5)
        mixed = Flips(o.rtmp, "bench-mix", 0.5 / cols, 0.5 / rows)
        time.sleep(3)  # both viewers past their start-up
        settled = time.monotonic()
        time.sleep(o.window)
        direct.stop()
        mixed.stop()
        direct.times = [t for t in direct.times if t >= settled]
        mixed.times = [t for t in mixed.times if t >= settled]
        lags = lag(direct.times, mixed.times)
        print(f"inputs={o.inputs}x{o.input_size}@30 output={w}x{h}@{o.fps}")
        print(f"server CPU, publishers only: {idle:.1f} % of a core")
        print(f"server CPU, mixing:          {mixing:.1f} % of a core "
              f"(the mix costs {mixing - idle:.1f} %)")
        print(f"frames per second seen:      direct {direct.fps(settled):.1f}, "
              f"mix {mixed.fps(settled):.1f}")
        print(f"flips seen:                  direct {len(direct.times)}, mix {len(mixed.times)}")
        if lags:
            print(f"latency added by the mixer:  median {statistics.median(lags) * 1000:.0f} ms, "
                  f"max {max(lags) * 1000:.0f} ms over {len(lags)} flips")
        else:
            print("latency added by the mixer: no flip seen in both views")
    finally:
        try:
            post(o.http, "/rest-api/mixer/terminate", {"uri": "mixer://bench"})
        except Exception:
            pass
        for p in pubs:
            p.kill()


if __name__ == "__main__":
    main()
