"""What a serving process serves, and the background thread that keeps it in step with the region's store.

Every ``reload_interval`` seconds the thread reads the region's rollout pointer (``models/<model>/_current.json``,
one small GET). When it names a version other than the one served, that version is loaded and verified beside
the served one (``include.serving.loader``) and swapped in at once: a request is answered entirely by the
version it started with. A version that is refused stays refused, and the served one keeps serving, until one
of the objects the refusal looked at changes (checked with HEADs, nothing downloaded). Every
``verify_interval`` seconds (0: never) the served version is re-checked cheaply; a file whose bytes changed at
rest unloads it, and every distinct bad copy is reported once to the replication audit.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace

from include.catalogue import Catalogue, Region
from include.clouds.objectstore import ObjectStore
from include.errors import CopyRejected, InvalidModelVersion
from include.replication.reports import CorruptReport, report_corrupt
from include.replication.rollout import RolloutPointer, pointer_key, read_pointer
from include.replication.signing import TrustedKeys
from include.serving.loader import LoadedVersion, Stamp, Verifier, unchanged

STOP_WAIT_SECONDS = 10.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    """A version the rollout pointer named that serving refused, why, and the stamps of what it looked at."""

    version: str
    manifest_sha256: str
    reason: str
    stamps: dict[str, Stamp]
    at: float

    def as_dict(self) -> dict:
        return {"version": self.version, "sha256": self.manifest_sha256, "reason": self.reason, "at": self.at}


@dataclass(frozen=True)
class Status:
    """One consistent view of the service, replaced whole (never changed in place) by the watcher thread."""

    served: LoadedVersion | None = None
    reason: str = "not loaded yet"  # why nothing is served ("" while a version is)
    refused: Refusal | None = None
    pointer: RolloutPointer | None = None
    last_verified: float = 0.0  # Unix time of the last successful verification of the served version


class ServingState:
    """The region's served version of ``model``, following the rollout pointer."""

    def __init__(self, catalogue: Catalogue, region: Region, model: str, store: ObjectStore, trusted: TrustedKeys):
        self.catalogue = catalogue
        self.region = region
        self.model = model
        self.store = store
        self.trusted = trusted
        self.status = Status()
        self.reported: set[tuple[str, str, str]] = set()  # (version, path, actual SHA-256) of copies reported

    def follow_pointer(self) -> None:
        """Read the rollout pointer; load, verify and swap in the version it names if it is not the one served."""
        status = self.status
        try:
            pointer = read_pointer(self.store, self.model)
        except InvalidModelVersion as exc:
            self._unready_unless_serving(str(exc))
            return
        except Exception as exc:  # the store is unreachable: nothing learnt, the served version stays
            where = f"{self.model} in {self.region.name}"
            self._unready_unless_serving(f"cannot read the rollout pointer of {where}: {exc}")
            return
        if pointer is None:
            url = self.store.url(pointer_key(self.model))
            self._unready_unless_serving(f"no version of {self.model} rolled out in {self.region.name} yet ({url})")
            return
        target = _target(pointer)
        served = status.served
        if served is not None and (served.version, served.manifest.total_sha256) == target:
            self.status = replace(status, pointer=pointer, refused=None)
            return
        refused = status.refused
        if refused is not None and (refused.version, refused.manifest_sha256) == target:
            try:
                if unchanged(self.store, refused.stamps):
                    self.status = replace(status, pointer=pointer)
                    return
            except Exception as exc:
                log.warning("cannot re-check refused %s %s: %s", self.model, pointer.version, exc)
                return
        self._load(pointer)

    def reverify(self) -> None:
        """Re-check the served version cheaply; unload it if its copy in the store is no longer the verified one."""
        status = self.status
        if status.served is None:
            return
        verifier = Verifier(self.store, self.trusted)
        try:
            served = verifier.recheck(status.served)
        except CopyRejected as exc:
            log.warning("unloading %s %s: %s", self.model, status.served.version, exc)
            self._report(verifier.corrupt)
            refused, served = status.refused, status.served
            if status.pointer is not None and _target(status.pointer) == (served.version, served.manifest.total_sha256):
                # refused until one of its objects changes again (a repair), like a version refused at load
                refused = Refusal(served.version, served.manifest.total_sha256, str(exc), verifier.stamps, time.time())
            self.status = replace(status, served=None, reason=str(exc), refused=refused)
            return
        except Exception as exc:  # the store is unreachable: the verified version stays in service
            log.warning("cannot re-verify %s %s (still serving it): %s", self.model, status.served.version, exc)
            return
        self.status = replace(status, served=served, last_verified=time.time())

    def _load(self, pointer: RolloutPointer) -> None:
        verifier = Verifier(self.store, self.trusted)
        try:
            loaded = verifier.load(pointer)
        except CopyRejected as exc:
            self._report(verifier.corrupt)
            log.warning("refusing %s %s in %s: %s", self.model, pointer.version, self.region.name, exc)
            refusal = Refusal(pointer.version, pointer.manifest_sha256, str(exc), verifier.stamps, time.time())
            status = self.status
            reason = status.reason if status.served is not None else str(exc)
            self.status = replace(status, refused=refusal, pointer=pointer, reason=reason)
            return
        except Exception as exc:  # the store failed mid-way: nothing learnt about the copy, try again next time
            log.warning("cannot load %s %s from %s: %s", self.model, pointer.version, self.region.name, exc)
            self._unready_unless_serving(f"cannot read {self.model} {pointer.version} from {self.region.name}: {exc}")
            return
        previous = self.status.served
        self.status = Status(served=loaded, reason="", pointer=pointer, last_verified=time.time())
        log.warning("%s serves %s %s (signed by %s), was %s", self.region.name, self.model, loaded.version,
                    loaded.signed_by, previous.version if previous else "nothing")  # fmt: skip

    def _unready_unless_serving(self, reason: str) -> None:
        if self.status.served is None:
            self.status = replace(self.status, reason=reason)
        else:
            log.warning("%s (still serving %s)", reason, self.status.served.version)

    def _report(self, report: CorruptReport | None) -> None:
        """Report a corrupt copy to the replication audit, once per distinct bad copy."""
        if report is None or (report.version, report.path, report.actual_sha256) in self.reported:
            return
        self.reported.add((report.version, report.path, report.actual_sha256))
        report_corrupt(self.catalogue, report)


def _target(pointer: RolloutPointer) -> tuple[str, str]:
    """The content a pointer names: its version and the manifest's total SHA-256."""
    return pointer.version, pointer.manifest_sha256


class StoreWatcher:
    """The background thread: follow the pointer every ``reload_interval`` s, re-verify every ``verify_interval`` s."""

    def __init__(self, state: ServingState, reload_interval: float, verify_interval: float):
        self.state = state
        self.reload_interval = reload_interval
        self.verify_interval = verify_interval
        self.first_attempt_done = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"serving-watch-{state.region.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop and wait for it (an attempt in progress finishes first)."""
        self._stopping.set()
        self._thread.join(STOP_WAIT_SECONDS)
        if self._thread.is_alive():
            log.warning("%s still busy with the store after %ss", self._thread.name, STOP_WAIT_SECONDS)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                status = self.state.status
                due = status.served is not None and 0 < self.verify_interval <= time.time() - status.last_verified
                if due:
                    self.state.reverify()
                self.state.follow_pointer()
            except Exception:  # a bug must not end the thread: the next attempt may succeed
                log.exception("keeping %s in step with the store failed", self.state.model)
            self.first_attempt_done.set()
            self._stopping.wait(self.reload_interval)
