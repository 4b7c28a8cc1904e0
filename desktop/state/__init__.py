"""The desktop's state: QObject models with observable properties; widgets only bind to them."""

from desktop.state.connection_status import ConnectionStatus
from desktop.state.controller import AppController
from desktop.state.engine_models import EngineModels
from desktop.state.job_settings import JobSettings
from desktop.state.jobs_model import JobsModel, JobView
from desktop.state.log_model import LogModel
from desktop.state.settings_model import SettingsModel

__all__ = [
    "AppController",
    "ConnectionStatus",
    "EngineModels",
    "JobSettings",
    "JobView",
    "JobsModel",
    "LogModel",
    "SettingsModel",
]
