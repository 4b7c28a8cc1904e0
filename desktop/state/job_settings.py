"""`JobSettings`: one waiting job's settings, editable like the defaults in `SettingsModel`."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.state.jobs_model import EDITABLE, JobsModel
from desktop.state.settings_model import (
    SettingsModel,
    check_setting,
    make_options,
    options_values,
)

log = logging.getLogger(__name__)


class JobSettings(QObject):
    """SettingsModel's interface (`value`, `values`, `set_value`, `reset`, `valueChanged`) over
    the options of job `job_id`, so the settings panel can edit a job it shows.

    Edits go straight to the job while it has not been sent to the engine (`editable`); the
    seed is the job's own (always locked). `reset` gives the job the current defaults. Changes
    made to the job elsewhere ("apply defaults to selected") show up here."""

    valueChanged = Signal(str, object)
    editableChanged = Signal(bool)

    def __init__(
        self, jobs: JobsModel, job_id: str, defaults: SettingsModel, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.job_id = job_id
        self.defaults = defaults
        job = jobs.job(job_id)
        if job is None:
            raise KeyError(f"no job {job_id!r} in the queue")
        self.name = job.name
        self._values = options_values(job.options, job.output_dir, defaults.value("prompt"))
        self._options = job.options
        self._editable = job.state in EDITABLE
        jobs.jobChanged.connect(self._job_changed)

    @property
    def editable(self) -> bool:
        return self._editable

    def value(self, name: str) -> Any:
        return self._values[name]

    def values(self) -> dict[str, Any]:
        return dict(self._values)

    def set_value(self, name: str, value: Any) -> None:
        check_setting(name, value)
        if self._values[name] == value:
            return
        if not self._editable:
            log.warning("%s has started; its settings can no longer change", self.name)
            return
        self._values[name] = value
        self._write()
        self.valueChanged.emit(name, value)

    def reset(self) -> None:
        """The job takes the current defaults (a fresh seed unless the defaults lock one)."""
        if not self._editable:
            return
        options = self.defaults.options()
        output_dir = str(self.defaults.value("output_dir"))
        self._load(options_values(options, output_dir, self.defaults.value("prompt")))
        self._write()

    def _write(self) -> None:
        self._options = make_options(self._values)
        self.jobs.update(self.job_id, options=self._options, output_dir=self._values["output_dir"])

    def _load(self, values: dict[str, Any]) -> None:
        old, self._values = self._values, values
        for name, value in values.items():
            if old[name] != value:
                self.valueChanged.emit(name, value)

    def _job_changed(self, job_id: str) -> None:
        job = self.jobs.job(job_id) if job_id == self.job_id else None
        if job is None:
            return
        if job.options is not self._options or job.output_dir != self._values["output_dir"]:
            self._options = job.options
            self._load(options_values(job.options, job.output_dir, self._values["prompt"]))
        editable = job.state in EDITABLE
        if editable != self._editable:
            self._editable = editable
            self.editableChanged.emit(editable)
