"""geocommuns.contrib.portal.uploads: the deliveries a technician sends through the web space.

Each delivery gets a folder ``<space>/depots/<id>/``: the file as received (a zipped
shapefile is unpacked beside it), ``depot.json`` (who sent it, for which commune and
layer, when) and, once the mapping assistant was used, ``draft.yml`` (the source
declaration being edited). Nothing else reads these folders: the check, the assistant and
the preview work from them until the delivery is submitted.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import yaml

from geocommuns.definitions.sourcedef import SourceDef
from geocommuns.errors import GeocommunsError

#: Accepted file endings and the reader format each one is.
FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".zip": "shapefile",
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
}
#: A zipped shapefile may unpack to at most this many times the cap of a delivery.
UNZIP_FACTOR = 10
_ID = re.compile(r"^[a-f0-9]{16}$")


class UploadError(GeocommunsError):
    """A delivered file cannot be kept (the message is for the technician, in French)."""


@dataclass(frozen=True)
class Upload:
    """One delivery being checked."""

    id: str
    user: str
    commune: str
    layer: str
    filename: str
    #: The file the readers open (the ``.shp`` of a zipped shapefile).
    file: str
    received_at: str
    #: Set once submitted: ``applied`` or ``proposed`` (waiting for review).
    status: str = "checking"

    def folder(self, root: Path) -> Path:
        """Where the delivery's files are."""
        return root / self.id

    def path(self, root: Path) -> Path:
        """The file to read."""
        return root / self.id / self.file


def safe_name(filename: str) -> str:
    """A file name without folders or characters a file system would mind."""
    base = Path(filename.replace("\\", "/")).name
    cleaned = re.sub(r"[^\w.\- ]+", "_", base).strip(" .") or "livraison"
    return cleaned[:120]


class Uploads:
    """The deliveries kept under ``root``.

    Parameters
    ----------
    root
        The folder (``<space>/depots``).
    max_bytes
        The largest file accepted.
    """

    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def save(
        self, *, user: str, commune: str, layer: str, filename: str, stream: IO[bytes]
    ) -> Upload:
        """Keep a received file.

        Raises
        ------
        UploadError
            When its type is not accepted, it is larger than the cap, or a zip holds no
            shapefile.
        """
        name = safe_name(filename)
        ending = Path(name).suffix.lower()
        if ending not in FORMATS:
            msg = (
                f"« {name} » n'est pas un type de fichier accepté : envoyez un CSV, un "
                "tableur XLSX, un shapefile zippé (.zip), un GeoJSON ou un GeoPackage."
            )
            raise UploadError(msg)
        upload_id = secrets.token_hex(8)
        folder = self.root / upload_id
        folder.mkdir(parents=True)
        target = folder / name
        written = 0
        with target.open("wb") as out:
            while chunk := stream.read(1 << 16):
                written += len(chunk)
                if written > self.max_bytes:
                    out.close()
                    shutil.rmtree(folder)
                    raise UploadError(too_large_message(self.max_bytes))
                out.write(chunk)
        if written == 0:
            shutil.rmtree(folder)
            msg = f"« {name} » est vide : choisissez le fichier de la livraison."
            raise UploadError(msg)
        file = name
        if ending == ".zip":
            try:
                file = _unzip_shapefile(target, folder, self.max_bytes * UNZIP_FACTOR)
            except UploadError:
                shutil.rmtree(folder)
                raise
        upload = Upload(
            id=upload_id, user=user, commune=commune, layer=layer, filename=name, file=file,
            received_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        )
        self._write_meta(upload)
        return upload

    def _write_meta(self, upload: Upload) -> None:
        (upload.folder(self.root) / "depot.json").write_text(
            json.dumps(asdict(upload), ensure_ascii=False), encoding="utf-8"
        )

    def get(self, upload_id: str) -> Upload | None:
        """The delivery with this id, or None."""
        if not _ID.match(upload_id):
            return None
        meta = self.root / upload_id / "depot.json"
        if not meta.is_file():
            return None
        return Upload(**json.loads(meta.read_text(encoding="utf-8")))

    def of_user(self, user: str) -> list[Upload]:
        """The user's deliveries, newest first."""
        found = [u for u in self._all() if u.user == user]
        return sorted(found, key=lambda u: u.received_at, reverse=True)

    def _all(self) -> Iterator[Upload]:
        if not self.root.is_dir():
            return
        for meta in self.root.glob("*/depot.json"):
            found = self.get(meta.parent.name)
            if found is not None:
                yield found

    def mark(self, upload: Upload, status: str) -> Upload:
        """Record that a delivery was submitted (``applied``) or queued (``proposed``)."""
        updated = Upload(**{**asdict(upload), "status": status})
        self._write_meta(updated)
        return updated

    def draft(self, upload: Upload) -> SourceDef | None:
        """The source declaration being edited in the assistant, or None."""
        path = upload.folder(self.root) / "draft.yml"
        if not path.is_file():
            return None
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["path"] = str(upload.path(self.root))
        return SourceDef.model_validate(data)

    def save_draft(self, upload: Upload, source: SourceDef) -> None:
        """Keep the declaration being edited."""
        data = source.model_dump(mode="json", exclude_defaults=True)
        data.update(id=source.id, layer=source.layer)
        data.pop("path", None)
        (upload.folder(self.root) / "draft.yml").write_text(
            yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )


def too_large_message(limit: int) -> str:
    """The French message of a file above the cap."""
    return (
        f"Le fichier dépasse la taille maximale acceptée ({limit / 1_000_000:.0f} Mo). "
        "Découpez la livraison en plusieurs fichiers, ou compressez un shapefile en .zip."
    )


def _unzip_shapefile(archive: Path, folder: Path, limit: int) -> str:
    """Unpack the shapefile of a zip beside it; the ``.shp`` file's name."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > limit:
                msg = "L'archive décompressée est trop volumineuse."
                raise UploadError(msg)
            shps = [m for m in members if m.filename.lower().endswith(".shp")]
            if len(shps) != 1:
                msg = (
                    "L'archive .zip doit contenir un seul shapefile (.shp avec ses fichiers "
                    f".dbf, .shx, .prj) ; elle en contient {len(shps)}."
                )
                raise UploadError(msg)
            stem = Path(shps[0].filename).stem
            for member in members:
                inner = Path(member.filename.replace("\\", "/"))
                if inner.stem != stem:
                    continue
                target = folder / safe_name(inner.name)
                with zf.open(member) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out)
            return safe_name(Path(shps[0].filename).name)
    except zipfile.BadZipFile:
        msg = "Le fichier .zip est illisible (archive abîmée) : refaites l'archive et renvoyez-la."
        raise UploadError(msg) from None
