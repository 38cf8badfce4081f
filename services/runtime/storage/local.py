"""Object storage in a local folder; the gateway serves objects under HMAC-signed, expiring URLs."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from urllib.parse import quote

from services.runtime.storage.signing import UrlSigner

FILES_ROUTE = "/files"


class LocalStorage:
    def __init__(self, root: Path, signer: UrlSigner, public_url: str) -> None:
        self.root = root.resolve()
        self._signer = signer
        self._public_url = public_url.rstrip("/")

    def path_for(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"object key escapes the storage root: {key!r}")
        return path

    def key_of(self, ref: str) -> str:
        if not ref.startswith("file://"):
            raise ValueError(f"not a local object reference: {ref!r}")
        path = Path(ref.removeprefix("file://")).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"reference outside the storage root: {ref!r}")
        return path.relative_to(self.root).as_posix()

    async def put_file(self, key: str, src: Path, content_type: str) -> str:
        dest = self.path_for(key)
        await asyncio.to_thread(self._copy_atomically, src, dest)
        return f"file://{dest}"

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> str:
        dest = self.path_for(key)
        await asyncio.to_thread(self._write_atomically, data, dest)
        return f"file://{dest}"

    async def fetch(self, ref: str, dest_dir: Path) -> Path:
        path = self.path_for(self.key_of(ref))
        if not path.is_file():
            raise FileNotFoundError(ref)
        return path

    async def signed_url(self, ref: str, ttl_seconds: int) -> str:
        key = self.key_of(ref)
        expires, signature = self._signer.sign(key, ttl_seconds)
        return f"{self._public_url}{FILES_ROUTE}/{quote(key)}?expires={expires}&signature={signature}"

    def verify(self, key: str, expires: int, signature: str) -> bool:
        return self._signer.verify(key, expires, signature)

    @staticmethod
    def _copy_atomically(src: Path, dest: Path) -> None:
        # Readers never see half a file: write beside it, then rename over. A hard link stores a file that the
        # services wrote on this same disk without copying its bytes (the work folder is deleted afterwards, the
        # link keeps the data); across disks it is a copy.
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        try:
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)  # half a copy on a full disk would keep it full
            raise

    @staticmethod
    def _write_atomically(data: bytes, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)  # half a file on a full disk would keep it full
            raise
