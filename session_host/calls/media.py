"""Browser audio legs of calls (aiortc), and the media bridge between them.

Each leg is one RTCPeerConnection for one (session token, call id): the browser's SDP offer comes in
as the `call.offer` command and the complete answer (non-trickle; gathering bounded in time) goes
back as its reply. Audio is Opus both ways (aiortc answers opus/48000/2 first).

Media bridge (sim driver): a call between two sim sessions is "carried" by this host. The browser
audio of one side is decoded, resampled to 16 kHz mono 20 ms chunks and pushed into the speaker
track of the other side's leg, whose clock-paced `recv()` sends it (silence on underrun, a small
bounded jitter buffer). Both legs must be on the same host; a leg whose peer leg lives on another
host hears nothing from it (documented limit). Playback (`call.play`) mixes a decoded audio file
into what the other party hears.

Everything runs on one asyncio loop in a dedicated thread; the command threads hand work to it.
A watchdog closes legs whose call left `active`/`ringing`, legs that never connect, and legs whose
browser stopped sending audio (page closed without a goodbye: Chrome sends no DTLS close).
"""

from __future__ import annotations

import array
import asyncio
import collections
import fractions
import io
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.core.calls import states
from chalicelib.core.calls.registry import CallRegistry
from chalicelib.core.calls.turn import ice_servers, split_urls
from chalicelib.core.errors import DomainError
from chalicelib.core.observability import logger

RATE = 16000
CHUNK = RATE // 50  # 20 ms
JITTER_CHUNKS = 10  # at most 200 ms queued towards a browser
WATCHDOG_SECONDS = 0.5
SILENCE = bytes(CHUNK * 2)
PLAYER_NOT_FOUND = "player session not found"


AUDIO_FILE_REFUSED = "AudioFile not found in the call audio directory"
PLAYBACK_OFF = "AudioFile playback is off on this gateway (CALL_AUDIO_DIR is not set); play a MediaKey instead"
MEDIA_KEY_REFUSED = "MediaKey not found: upload the file first"
CANNOT_DECODE = "cannot decode the audio file"


def open_audio_file(audio_dir: str, path: str):
    """Open `path` only if it resolves (symlinks and `..` followed) to a regular file inside `audio_dir`.

    Every refusal is the same 404 AUDIO_FILE_REFUSED, whether the file exists or not, so a tenant can
    neither read nor probe the host's files. The resolved path is opened with O_NOFOLLOW, so a symlink
    swapped in after the check is refused too. `audio_dir` empty: playback is off (403)."""
    if not audio_dir:
        raise DomainError(403, PLAYBACK_OFF)
    base = os.path.realpath(audio_dir)
    candidate = os.path.realpath(os.path.join(base, path.lstrip("/")) if not os.path.isabs(path) else path)
    if os.path.commonpath([base, candidate]) != base or candidate == base:
        raise DomainError(404, AUDIO_FILE_REFUSED)
    try:
        fd = os.open(candidate, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        raise DomainError(404, AUDIO_FILE_REFUSED) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DomainError(404, AUDIO_FILE_REFUSED)
    return os.fdopen(fd, "rb")


def _aiortc():
    import aiortc  # host-only dependency, loaded on first use

    return aiortc


class Player:
    """A decoded audio file, pulled 20 ms at a time by the speaker that plays it."""

    def __init__(self, source: Any):
        """`source`: an open binary file (a confined AudioFile) or a BytesIO (an uploaded MediaKey)."""
        import av
        from av.audio.resampler import AudioResampler

        self.source = source
        self.container = av.open(source)
        if not self.container.streams.audio:
            self.container.close()
            raise ValueError("no audio stream")
        self.resampler = AudioResampler(format="s16", layout="mono", rate=RATE, frame_size=CHUNK)
        self.frames = self.container.decode(audio=0)
        self.pending: collections.deque[bytes] = collections.deque()
        self.done = False

    def next_chunk(self) -> bytes | None:
        while not self.pending and not self.done:
            try:
                frame = next(self.frames)
            except (StopIteration, Exception):
                self.close()
                break
            for out in self.resampler.resample(frame):
                self.pending.append(bytes(out.planes[0])[: out.samples * 2])
        if self.pending:
            chunk = self.pending.popleft()
            return chunk + bytes(CHUNK * 2 - len(chunk)) if len(chunk) < CHUNK * 2 else chunk
        return None

    def close(self) -> None:
        if not self.done:
            self.done = True
            self.container.close()
            self.source.close()


def mix(a: bytes, b: bytes) -> bytes:
    x, y = array.array("h", a), array.array("h", b)
    return array.array("h", (max(-32768, min(32767, p + q)) for p, q in zip(x, y, strict=False))).tobytes()


def make_speaker(media: CallMedia, leg: Leg):
    from aiortc import MediaStreamTrack  # host-only dependency, loaded on first use
    from av import AudioFrame

    class SpeakerTrack(MediaStreamTrack):
        """What the browser hears: the other side's audio (and playback), paced by the clock."""

        kind = "audio"

        def __init__(self):
            super().__init__()
            self.queue: collections.deque[bytes] = collections.deque(maxlen=JITTER_CHUNKS)
            self._pts = 0
            self._start: float | None = None

        def push(self, pcm: bytes) -> None:
            self.queue.append(pcm)  # a full deque drops the oldest chunk

        async def recv(self):
            if self.readyState != "live":
                raise _aiortc().mediastreams.MediaStreamError
            if self._start is None:
                self._start = time.monotonic()
            else:
                await asyncio.sleep(max(0.0, self._start + self._pts / RATE - time.monotonic()))
            pcm = self.queue.popleft() if self.queue else None
            player = media.players.get((leg.link_token, leg.call_id)) if leg.link_token else None
            if player is not None and leg.link_token:
                chunk = player.next_chunk()
                if chunk is None:
                    media.players.pop((leg.link_token, leg.call_id), None)
                else:
                    pcm = chunk if pcm is None else mix(pcm, chunk)
            frame = AudioFrame(format="s16", layout="mono", samples=CHUNK)
            frame.planes[0].update(pcm or SILENCE)
            frame.sample_rate, frame.time_base, frame.pts = RATE, fractions.Fraction(1, RATE), self._pts
            self._pts += CHUNK
            return frame

    return SpeakerTrack()


@dataclass
class Leg:
    token: str
    call_id: str
    pc: Any = None  # aiortc.RTCPeerConnection
    speaker: Any = None  # make_speaker's track
    link_token: str | None = None
    call_state: str = states.RINGING
    state: str = "connecting"
    created: float = field(default_factory=time.monotonic)
    last_inbound: float = 0.0
    inbound_frames: int = 0
    pump: asyncio.Task | None = None
    closing: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.token, self.call_id)


class CallMedia:
    def __init__(self, settings, registry: CallRegistry, host_id: str,
                 on_inactive: Callable[[str, str], None] | None = None):
        self.settings = settings
        self.registry = registry
        self.host_id = host_id
        self.on_inactive = on_inactive  # (token, call_id): the browser went silent; the call should end
        self.legs: dict[tuple[str, str], Leg] = {}
        self.players: dict[tuple[str, str], Player] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    # -- the loop thread ---------------------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self.loop is None:
                addresses = split_urls(self.settings.ice_host_addresses)
                if addresses:
                    import aioice.ice

                    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: list(addresses)
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.create_task(self._watchdog())
                    loop.run_forever()

                threading.Thread(target=run, name="call-media", daemon=True).start()
                ready.wait(10)
                self.loop = loop
            return self.loop

    def _run(self, coro, timeout: float):
        future = asyncio.run_coroutine_threadsafe(coro, self._ensure_loop())
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise DomainError(504, "the call media did not answer in time") from None

    async def _blocking(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    # -- commands (called from command threads) ----------------------------------------------------

    def offer(self, token: str, call_id: str, sdp: str, link_token: str | None, call_state: str) -> str:
        bound = self.settings.ice_gather_timeout_seconds + 10
        return self._run(self._offer(token, call_id, sdp, link_token, call_state), bound + 5)

    def close(self, token: str, call_id: str, reason: str = "closed") -> None:
        if self.loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._close((token, call_id), reason), self.loop)

    def play(self, token: str, call_id: str, path: str = "", media_key: str = "") -> None:
        """Mix an audio file into what the other party hears: `path` inside CALL_AUDIO_DIR, or `media_key`,
        an upload of this session (chalicelib/core/media.py). Errors: 403 playback off, 404
        AUDIO_FILE_REFUSED (one answer for outside, `..`, symlinks out, missing), 400 not decodable."""
        source = open_audio_file(self.settings.call_audio_dir, path) if path else self._upload(token, media_key)
        try:
            player = Player(source)
        except Exception:
            source.close()
            raise DomainError(400, CANNOT_DECODE) from None
        loop = self._ensure_loop()

        def swap() -> None:
            old = self.players.pop((token, call_id), None)
            if old is not None:
                old.close()
            self.players[(token, call_id)] = player

        loop.call_soon_threadsafe(swap)

    def _upload(self, token: str, media_key: str) -> io.BytesIO:
        from chalicelib.core.media import MediaStore, media_store_errors, missing_object

        store = MediaStore(self.settings)
        if not media_key or not store.owns_upload(token, media_key):
            raise DomainError(404, MEDIA_KEY_REFUSED)
        with media_store_errors("MediaKey"):
            try:
                data, _ = store.get(media_key)
            except ClientError as exc:
                if missing_object(exc):
                    raise DomainError(404, MEDIA_KEY_REFUSED) from None
                raise
        if len(data) > self.settings.media_max_bytes:
            raise DomainError(413, "Payload too large: MediaKey exceeds the limit of "
                                   f"{self.settings.media_max_bytes} bytes")
        return io.BytesIO(data)

    def stop(self, token: str, call_id: str) -> None:
        if self.loop is None:
            raise DomainError(404, PLAYER_NOT_FOUND)

        async def pop() -> bool:
            player = self.players.pop((token, call_id), None)
            if player is not None:
                player.close()
            return player is not None

        if not self._run(pop(), 5):
            raise DomainError(404, PLAYER_NOT_FOUND)

    def active_legs(self) -> int:
        return len(self.legs)

    def shutdown(self, timeout: float = 5.0) -> None:
        if self.loop is None:
            return

        async def close_all() -> None:
            for key in list(self.legs):
                await self._close(key, "host stopping")

        try:
            asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(timeout)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)

    # -- on the loop -------------------------------------------------------------------------------

    def _configuration(self):
        aiortc = _aiortc()
        servers = [aiortc.RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
                   for s in ice_servers(self.settings)]
        # Always explicit: aiortc's default (Google STUN) stalls every answer where UDP is dropped.
        return aiortc.RTCConfiguration(iceServers=servers)

    async def _offer(self, token: str, call_id: str, sdp: str, link_token: str | None, call_state: str) -> str:
        aiortc = _aiortc()
        started = time.monotonic()
        await self._close((token, call_id), "replaced by a new offer")
        leg = Leg(token, call_id, link_token=link_token, call_state=call_state)
        leg.pc = pc = aiortc.RTCPeerConnection(self._configuration())
        leg.speaker = make_speaker(self, leg)
        self.legs[leg.key] = leg

        @pc.on("track")
        def on_track(track) -> None:
            if track.kind == "audio" and leg.pump is None:
                leg.pump = asyncio.ensure_future(self._pump(leg, track))
            elif track.kind != "audio":
                from aiortc.contrib.media import MediaBlackhole

                blackhole = MediaBlackhole()
                blackhole.addTrack(track)
                asyncio.ensure_future(blackhole.start())  # never let unused media pile up

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if self.legs.get(leg.key) is not leg:
                return
            if pc.connectionState == "connected":
                leg.state = "connected"
                leg.last_inbound = time.monotonic()
                await self._blocking(self.registry.set_leg, token, call_id, "connected", self.host_id)
                logger.info("call leg connected", extra={"token": token, "call_id": call_id})
            elif pc.connectionState in ("failed", "closed"):
                await self._close(leg.key, pc.connectionState, "failed" if pc.connectionState == "failed" else "closed")

        try:
            await pc.setRemoteDescription(aiortc.RTCSessionDescription(sdp=sdp, type="offer"))
            if not any(t.kind == "audio" for t in pc.getTransceivers()):
                raise DomainError(400, "the offer has no audio")
            pc.addTrack(leg.speaker)
            answer = await pc.createAnswer()
            # setLocalDescription gathers every candidate before it returns (no trickle); bounded.
            await asyncio.wait_for(pc.setLocalDescription(answer), self.settings.ice_gather_timeout_seconds + 10)
        except DomainError:
            await self._close(leg.key, "bad offer", "failed")
            raise
        except TimeoutError:
            await self._close(leg.key, "ICE gathering timed out", "failed")
            raise DomainError(504, "ICE gathering timed out") from None
        except Exception as exc:
            await self._close(leg.key, "bad offer", "failed")
            raise DomainError(400, f"invalid SDP offer: {exc}") from None
        answered = time.monotonic()
        await self._blocking(self.registry.set_leg, token, call_id, "connecting", self.host_id)
        logger.info("call leg answered", extra={"token": token, "call_id": call_id,
                                                 "answer_ms": round(1000 * (answered - started), 1),
                                                 "recorded_ms": round(1000 * (time.monotonic() - answered), 1)})
        return pc.localDescription.sdp

    async def _pump(self, leg: Leg, track) -> None:
        """The browser's audio -> 16 kHz mono 20 ms chunks -> the other side's speaker (when the call is active)."""
        from av.audio.resampler import AudioResampler

        resampler = AudioResampler(format="s16", layout="mono", rate=RATE, frame_size=CHUNK)
        MediaStreamError = _aiortc().mediastreams.MediaStreamError
        try:
            while True:
                frame = await track.recv()
                leg.last_inbound = time.monotonic()
                leg.inbound_frames += 1
                peer = self.legs.get((leg.link_token, leg.call_id)) if leg.link_token else None
                for out in resampler.resample(frame):
                    if peer is not None and leg.call_state == states.ACTIVE:
                        peer.speaker.push(bytes(out.planes[0])[: out.samples * 2])
        except (MediaStreamError, asyncio.CancelledError):
            pass

    async def _close(self, key: tuple[str, str], reason: str, leg_state: str = "closed") -> None:
        leg = self.legs.get(key)
        if leg is None or leg.closing:
            return
        leg.closing = True
        del self.legs[key]
        if leg.pump is not None:
            leg.pump.cancel()
        try:
            leg.speaker.stop()
            await asyncio.wait_for(leg.pc.close(), 5)
        except Exception as exc:
            logger.warning("closing a call leg failed", extra={"error": str(exc)})
        logger.info("call leg closed", extra={"token": key[0], "call_id": key[1], "reason": reason})
        try:
            await self._blocking(self.registry.set_leg, key[0], key[1], leg_state)
        except Exception as exc:
            logger.warning("could not record the call leg state", extra={"error": str(exc)})

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(WATCHDOG_SECONDS)
            for leg in list(self.legs.values()):
                try:
                    await self._check(leg)
                except Exception as exc:
                    logger.warning("call leg check failed", extra={"error": str(exc)})

    async def _check(self, leg: Leg) -> None:
        call = await self._blocking(self.registry.get, leg.token, leg.call_id)
        if self.legs.get(leg.key) is not leg:
            return
        if call is None or states.is_terminal(call.state):
            await self._close(leg.key, f"call {call.state if call else 'gone'}")
            return
        leg.call_state, leg.link_token = call.state, call.link_token or leg.link_token
        now = time.monotonic()
        if leg.state == "connecting" and now - leg.created > self.settings.call_connect_timeout_seconds:
            await self._close(leg.key, "never connected", "failed")
        elif leg.state == "connected" and now - leg.last_inbound > self.settings.call_inactivity_seconds:
            await self._close(leg.key, "no audio from the browser")
            if self.on_inactive is not None:
                await self._blocking(self.on_inactive, leg.token, leg.call_id)
