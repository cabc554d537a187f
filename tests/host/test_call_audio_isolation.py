"""Call playback cannot read or probe the host's files: AudioFile resolves only inside CALL_AUDIO_DIR,
and every refusal (outside, `..`, a symlink out, missing) is the same error; a MediaKey plays only this
session's own upload."""

from __future__ import annotations

import io
import math
import os
import struct
import time
import wave

import pytest

from chalicelib.core.errors import DomainError
from chalicelib.core.settings import Settings
from session_host.calls.media import AUDIO_FILE_REFUSED, MEDIA_KEY_REFUSED, PLAYBACK_OFF, CallMedia, open_audio_file


def _wav(seconds: float = 0.2) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 8))) for i in range(int(16000 * seconds))))
    return out.getvalue()


@pytest.fixture
def audio_dir(tmp_path):
    allowed = tmp_path / "audio"
    allowed.mkdir()
    (allowed / "hello.wav").write_bytes(_wav())
    (allowed / "sub").mkdir()
    (allowed / "sub" / "deep.wav").write_bytes(_wav())
    os.symlink(allowed / "hello.wav", allowed / "inside-link.wav")  # a link that stays inside is fine
    outside = tmp_path / "secret.wav"  # decodable audio right next to the directory
    outside.write_bytes(_wav())
    os.symlink(outside, allowed / "escape.wav")
    os.symlink("/etc/passwd", allowed / "passwd.wav")
    os.symlink(tmp_path, allowed / "up")  # a directory link leading out
    return allowed


def _refusal(audio_dir, path: str) -> tuple[int, str]:
    with pytest.raises(DomainError) as caught:
        open_audio_file(str(audio_dir), path)
    return caught.value.status, caught.value.message


def test_every_refusal_is_the_same_error_whether_or_not_the_file_exists(audio_dir):
    attempts = [
        "/etc/passwd",                       # outside, exists
        "/etc/no-such-file",                 # outside, missing
        str(audio_dir.parent / "secret.wav"),  # outside by absolute path, decodable audio
        "../secret.wav",                     # through ..
        "sub/../../secret.wav",
        "escape.wav",                        # through a symlink to a file outside
        "passwd.wav",
        "up/secret.wav",                     # through a symlinked directory
        "missing.wav",                       # inside, missing
        "sub",                               # inside, not a file
        "",                                  # the directory itself
    ]
    answers = {path: _refusal(audio_dir, path) for path in attempts}
    assert set(answers.values()) == {(404, AUDIO_FILE_REFUSED)}, answers


def test_files_inside_the_directory_open(audio_dir):
    for path in ("hello.wav", "sub/deep.wav", "inside-link.wav", str(audio_dir / "hello.wav")):
        with open_audio_file(str(audio_dir), path) as handle:
            assert handle.read(4) == b"RIFF"


def test_playback_is_off_without_a_directory():
    with pytest.raises(DomainError) as caught:
        open_audio_file("", "hello.wav")
    assert (caught.value.status, caught.value.message) == (403, PLAYBACK_OFF)


def test_a_media_key_plays_only_this_sessions_upload(aws, audio_dir):
    from chalicelib.core.calls.registry import CallRegistry
    from chalicelib.core.media import UPLOAD_PREFIX, MediaStore, _owner

    settings = Settings(stage="test", call_audio_dir=str(audio_dir))
    store = MediaStore(settings)
    mine = f"{UPLOAD_PREFIX}{_owner('alice-token')}/clip"
    theirs = f"{UPLOAD_PREFIX}{_owner('bob-token')}/clip"
    for key in (mine, theirs):
        store.s3.put_object(Bucket=settings.media_bucket_name, Key=key, Body=_wav(), ContentType="audio/wav")
    store.s3.put_object(Bucket=settings.media_bucket_name, Key=f"{UPLOAD_PREFIX}{_owner('alice-token')}/junk",
                        Body=b"not audio at all", ContentType="audio/wav")
    media = CallMedia(settings, CallRegistry(60), "h1")
    try:
        media.play("alice-token", "C1", media_key=mine)
        media.play("alice-token", "C2", path="hello.wav")
        deadline = time.monotonic() + 5
        while len(media.players) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert set(media.players) == {("alice-token", "C1"), ("alice-token", "C2")}
        assert media.players[("alice-token", "C1")].next_chunk() is not None  # decoded from the upload
        for key in (theirs, f"{UPLOAD_PREFIX}{_owner('alice-token')}/missing", "media/out/x", ""):
            with pytest.raises(DomainError) as caught:
                media.play("alice-token", "C3", media_key=key)
            assert (caught.value.status, caught.value.message) == (404, MEDIA_KEY_REFUSED)
        with pytest.raises(DomainError) as caught:
            media.play("alice-token", "C4", media_key=f"{UPLOAD_PREFIX}{_owner('alice-token')}/junk")
        assert caught.value.status == 400
    finally:
        media.shutdown()


def test_a_media_key_s3_cannot_read_is_503_not_404(aws, audio_dir, monkeypatch):
    """Only a key that is not there (NoSuchKey, or AccessDenied for a role that cannot list the bucket,
    as in AWS) is the client's 404; S3 failing is 503, try again."""
    from botocore.exceptions import ClientError

    from chalicelib.core.calls.registry import CallRegistry
    from chalicelib.core.media import UPLOAD_PREFIX, MediaStore, _owner

    settings = Settings(stage="test", call_audio_dir=str(audio_dir))
    key = f"{UPLOAD_PREFIX}{_owner('alice-token')}/clip"
    media = CallMedia(settings, CallRegistry(60), "h1")
    try:
        for code, status in (("AccessDenied", 404), ("NoSuchKey", 404), ("InternalError", 503), ("SlowDown", 503)):
            def failing_get(self, key, code=code):
                raise ClientError({"Error": {"Code": code, "Message": "no"}}, "GetObject")

            monkeypatch.setattr(MediaStore, "get", failing_get)
            with pytest.raises(DomainError) as caught:
                media.play("alice-token", "C1", media_key=key)
            assert caught.value.status == status, code
    finally:
        media.shutdown()
