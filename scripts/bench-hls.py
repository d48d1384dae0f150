#!/usr/bin/env python3
"""HLS under load: N players that behave like classic HLS players (reload the media playlist once per
target duration, fetch every new segment over a keep-alive connection) against streamgate or
nginx-rtmp, fed the same RTMP stream (a pre-encoded 640x360 clip with a 1 s GOP, looped without
re-encoding). Prints requests per second served, the players' download rate against the stream's,
and the server's CPU (from /proc, 100 % = one core) per 100 players.

  STREAMGATE_BIN=target/debug/streamgate scripts/bench-hls.py streamgate --viewers 100 --seconds 20
  scripts/bench-hls.py nginx --viewers 100            # needs nginx with libnginx-mod-rtmp

Everything runs on 127.0.0.1, on ports of its own; nginx runs from a config written to a temporary
folder. --format ts|fmp4 picks streamgate's container (nginx-rtmp serves MPEG-TS only).
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def make_clip(path):
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440",
         "-t", "10", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "1500k", "-g", "30", "-bf", "0",
         "-c:a", "aac", "-b:a", "96k", path],
        check=True)


class Server:
    def __init__(self, kind, tmp, fmt):
        self.kind, self.tmp, self.fmt = kind, tmp, fmt
        self.procs = []

    def start(self):
        if self.kind == "streamgate":
            bin_ = os.environ.get("STREAMGATE_BIN", os.path.join(ROOT, "target/debug/streamgate"))
            p = subprocess.Popen(
                [bin_, "serve", "--http", "127.0.0.1:28180", "--rtmp", "127.0.0.1:21936", "--hls", "127.0.0.1:28182",
                 "--rtsp", "127.0.0.1:28554", "--ice-address", "127.0.0.1", "--data-dir", os.path.join(self.tmp, "data")],
                stdout=open(os.path.join(self.tmp, "server.log"), "w"), stderr=subprocess.STDOUT)
            self.procs.append(p)
            self.pid = p.pid
            self.publish = "rtmp://127.0.0.1:21936/live/bench"
            query = "?format=ts" if self.fmt == "ts" else ""
            self.playlist = ("127.0.0.1", 28180, f"/hls/bench/media.m3u8{query}")
        else:
            conf = os.path.join(self.tmp, "nginx.conf")
            os.makedirs(os.path.join(self.tmp, "hls"), exist_ok=True)
            # nginx's worker (www-data when started as root) writes and serves the segments.
            os.chmod(self.tmp, 0o755)
            os.chmod(os.path.join(self.tmp, "hls"), 0o777)
            with open(conf, "w") as f:
                f.write(f"""load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off; master_process on; worker_processes 1; pid {self.tmp}/nginx.pid; error_log {self.tmp}/error.log warn;
events {{ worker_connections 4096; }}
rtmp {{ server {{ listen 127.0.0.1:21937; application live {{ live on; hls on; hls_path {self.tmp}/hls;
  hls_fragment 1s; hls_playlist_length 6s; }} }} }}
http {{ access_log off; server {{ listen 127.0.0.1:28190; location /hls {{ alias {self.tmp}/hls;
  types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }} add_header Cache-Control no-cache; }} }} }}
""")
            p = subprocess.Popen(["nginx", "-p", self.tmp, "-c", conf, "-e", os.path.join(self.tmp, "error.log")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            self.procs.append(p)
            time.sleep(1)
            out = subprocess.run(["ps", "--ppid", str(p.pid), "-o", "pid="], capture_output=True, text=True).stdout
            self.pid = int(out.split()[0])
            self.publish = "rtmp://127.0.0.1:21937/live/bench"
            self.playlist = ("127.0.0.1", 28190, "/hls/bench.m3u8")
        time.sleep(1.5)

    def feed(self, clip):
        p = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", clip,
                              "-c", "copy", "-f", "flv", self.publish], stdin=subprocess.DEVNULL)
        self.procs.append(p)

    def stop(self):
        for p in reversed(self.procs):
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


async def request(reader, writer, host, path):
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    if m:
        body = await reader.readexactly(int(m.group(1)))
    else:
        body = b""
        while True:
            size = int((await reader.readline()).strip() or b"0", 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    return status, body


class Stats:
    def __init__(self):
        self.requests = 0
        self.errors = 0
        self.bytes = 0
        self.segments = 0


async def player(host, port, path, stats, stop_at, start_at):
    base = path.rsplit("/", 1)[0]
    seen = set()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.time() < stop_at:
            t0 = time.time()
            status, body = await request(reader, writer, host, path)
            counting = t0 >= start_at
            if counting:
                stats.requests += 1
            if status != 200:
                if counting:
                    stats.errors += 1
                await asyncio.sleep(1)
                continue
            text = body.decode(errors="replace")
            target = float(re.search(r"#EXT-X-TARGETDURATION:(\d+)", text).group(1))
            uris = [l for l in text.splitlines() if l and not l.startswith("#")]
            if not seen:
                seen.update(uris[:-3])  # start three segments from the end, as players do
            for u in uris:
                if u in seen:
                    continue
                seen.add(u)
                seg = u if u.startswith("/") else f"{base}/{u.split('?')[0]}"
                status, data = await request(reader, writer, host, seg)
                if counting:
                    stats.requests += 1
                    stats.segments += 1
                    stats.bytes += len(data)
                    if status != 200:
                        stats.errors += 1
            await asyncio.sleep(max(0.0, target - (time.time() - t0)))
    finally:
        writer.close()


async def run(server, viewers, seconds, ramp):
    stats = Stats()
    host, port, path = server.playlist
    start_at = time.time() + ramp + 3
    stop_at = start_at + seconds
    tasks = []
    for i in range(viewers):
        tasks.append(asyncio.create_task(player(host, port, path, stats, stop_at, start_at)))
        await asyncio.sleep(ramp / max(1, viewers))
    await asyncio.sleep(max(0, start_at - time.time()))
    c0 = cpu_seconds(server.pid)
    await asyncio.sleep(max(0, stop_at - time.time()))
    c1 = cpu_seconds(server.pid)
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats, (c1 - c0) / seconds * 100


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("server", choices=["streamgate", "nginx"])
    ap.add_argument("--viewers", type=int, default=100)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--format", choices=["ts", "fmp4"], default="ts")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-hls-")
    clip = os.path.join(tmp, "clip.mp4")
    make_clip(clip)
    server = Server(args.server, tmp, args.format)
    try:
        server.start()
        server.feed(clip)
        time.sleep(6)  # a full window of segments
        stats, cpu = asyncio.run(run(server, args.viewers, args.seconds, ramp=5))
    finally:
        server.stop()
    stream_bps = os.path.getsize(clip) * 8 / 10
    got_bps = stats.bytes * 8 / args.seconds / max(1, args.viewers)
    result = {
        "server": args.server, "format": args.format if args.server == "streamgate" else "ts",
        "viewers": args.viewers, "seconds": args.seconds,
        "requests_per_s": round(stats.requests / args.seconds, 1), "errors": stats.errors,
        "segments": stats.segments, "player_rate_vs_stream": round(got_bps / stream_bps, 3),
        "cpu_percent": round(cpu, 2), "cpu_percent_per_100_players": round(cpu / args.viewers * 100, 2),
    }
    print(json.dumps(result))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
