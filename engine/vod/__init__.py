"""The VOD service: templates, videos, queued jobs, stored batch runs, images, events, delivery.

:class:`Service` (``engine/vod/service.py``) is the facade every face uses: the CLI's VOD groups
and ``engine run`` with a store, and an HTTP API. What a face needs besides it (the store's
environment variable, the job states, the setting keys and which of them are secret, the callback
secret's variable, the records methods answer) is re-exported here, so no face reaches into the store.
"""

from ..store.access_keys import AccessKey
from ..store.db import STORE_ENV
from ..store.jobs import STATES as JOB_STATES
from ..store.settings import KEYS as SETTING_KEYS
from ..store.settings import SECRET_KEYS as SECRET_SETTING_KEYS
from ..store.settings import SERVER_KEYS as SERVER_SETTING_KEYS
from .delivery import DeliveryReport
from .service import Service, add_videos
from .webhook import SECRET_ENV
from .worker import WorkerReport

__all__ = ["JOB_STATES", "SECRET_ENV", "SECRET_SETTING_KEYS", "SERVER_SETTING_KEYS", "SETTING_KEYS", "STORE_ENV", "AccessKey", "DeliveryReport",
           "Service", "WorkerReport", "add_videos"]
