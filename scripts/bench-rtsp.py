#!/usr/bin/env python3
"""RTSP at scale, with two streamgate processes on 127.0.0.1:

  * a camera farm: a second streamgate serving --cameras looping VOD-live streams of a pre-encoded
    640x360 25 fps clip (H.264 without B-frames + AAC, like an IP camera) over its RTSP server;
  * the server measured: it pulls every camera (/rest-api/rtsp/startup, RTSP over TCP), then serves
    one stream to --viewers RTSP players and, for comparison, to as many RTMP players (ffmpeg reading
    with -c copy, so the players decode nothing).

Prints the measured server's CPU (from /proc, 100 % = one core) and memory (RSS) with no camera,
with every camera, per camera, and per viewer for RTSP and for RTMP.

  STREAMGATE_BIN=target/debug/streamgate scripts/bench-rtsp.py --cameras 50 --viewers 20
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
BIN = os.environ.get("STREAMGATE_BIN", os.path.join(ROOT, "target/debug/streamgate"))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_percent(pid, seconds):
    a, t = cpu_seconds(pid), time.time()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - a) / (time.time() - t)


def rest(port, route, body):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{route}", data=json.dumps(body).encode(),
        headers={"content-type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def serve(tmp, name, http, rtmp, rtsp, hls, extra=()):
    data = os.path.join(tmp, name)
    os.makedirs(data, exist_ok=True)
    return subprocess.Popen(
        [BIN, "serve", "--http", f"127.0.0.1:{http}", "--rtmp", f"127.0.0.1:{rtmp}",
         "--rtsp", f"127.0.0.1:{rtsp}", "--hls", f"127.0.0.1:{hls}", "--ice-address", "127.0.0.1",
         "--data-dir", data, *extra],
        stdout=open(os.path.join(tmp, f"{name}.log"), "w"), stderr=subprocess.STDOUT,
        env={**os.environ, "RUST_LOG": "warn"})


def wait_health(port):
    for _ in range(150):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return
        except Exception:
            time.sleep(0.2)
    sys.exit(f"server on {port} did not start")


def players(urls, transport=None):
    out = []
    for u in urls:
        cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error"]
        if transport:
            cmd += ["-rtsp_transport", transport]
        cmd += ["-i", u, "-c", "copy", "-f", "null", "-"]
        out.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL))
    return out


def stop(procs):
    for p in procs:
        p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cameras", type=int, default=50)
    ap.add_argument("--viewers", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-rtsp-")
    media = os.path.join(tmp, "media")
    os.makedirs(media)
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
         "-t", "10", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "1000k", "-g", "25", "-bf", "0",
         "-c:a", "aac", "-b:a", "64k", os.path.join(media, "cam.mp4")], check=True)

    farm = serve(tmp, "farm", 29180, 29935, 29554, 29182, ["--media-dir", media])
    sut = serve(tmp, "sut", 28180, 28935, 28554, 28182)
    procs = [farm, sut]
    try:
        wait_health(29180)
        wait_health(28180)
        for i in range(args.cameras):
            code, v = rest(29180, "/rest-api/vod/startup",
                           {"uri": "vod-live://cam.mp4", "localStreamName": f"cam{i}", "loop": True})
            assert code == 200, v
        time.sleep(2)
        idle_cpu, idle_rss = cpu_percent(sut.pid, args.seconds), rss_mb(sut.pid)
        for i in range(args.cameras):
            code, v = rest(28180, "/rest-api/rtsp/startup",
                           {"uri": f"rtsp://127.0.0.1:29554/cam{i}", "localStreamName": f"c{i}"})
            assert code == 200, v
        deadline = time.time() + 60
        while time.time() < deadline:
            code, v = rest(28180, "/rest-api/rtsp/find_all", {})
            up = [p for p in (v if isinstance(v, list) else []) if p.get("hasVideo") and p.get("status") == "PROCESSED_LOCAL"]
            if len(up) == args.cameras:
                break
            time.sleep(0.5)
        print(f"cameras up: {len(up)} of {args.cameras}")
        time.sleep(3)
        cams_cpu, cams_rss = cpu_percent(sut.pid, args.seconds), rss_mb(sut.pid)

        results = {}
        for kind in ("rtsp", "rtmp"):
            urls = [f"rtsp://127.0.0.1:28554/c0" if kind == "rtsp" else "rtmp://127.0.0.1:28935/live/c0"] * args.viewers
            ps = players(urls, "tcp" if kind == "rtsp" else None)
            time.sleep(4)
            alive = sum(p.poll() is None for p in ps)
            cpu = cpu_percent(sut.pid, args.seconds)
            results[kind] = (alive, cpu, rss_mb(sut.pid))
            stop(ps)
            time.sleep(3)

        print(f"machine: {os.cpu_count()} cores; binary: {BIN}")
        print(f"{'':28}{'CPU %':>8}{'RSS MB':>9}")
        print(f"{'no camera':28}{idle_cpu:8.1f}{idle_rss:9.1f}")
        print(f"{f'{args.cameras} cameras':28}{cams_cpu:8.1f}{cams_rss:9.1f}")
        n = max(args.cameras, 1)
        print(f"{'per camera':28}{(cams_cpu - idle_cpu) / n:8.2f}{(cams_rss - idle_rss) / n:9.2f}")
        for kind, (alive, cpu, rss) in results.items():
            per = (cpu - cams_cpu) / max(args.viewers, 1)
            print(f"{f'+{args.viewers} {kind.upper()} viewers ({alive} up)':28}{cpu:8.1f}{rss:9.1f}   per viewer {per:.2f} %")
    finally:
        stop(procs)


if __name__ == "__main__":
    main()
