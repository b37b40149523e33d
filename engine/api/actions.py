"""The VOD actions the API answers: ``Action`` name -> a handler over the :class:`Service`.

Each handler takes the request's parameters (strings, as the SDKs send them) and answers the
service's response shape, less the ``RequestId`` the server adds. Parameters are checked here
only for presence and JSON shape; what they mean (template fields, time spans, paths) is judged
by the service, whose :class:`EngineError` becomes the service's error code
(:func:`engine.api.errors.from_engine_error`). Adding an action is one function and one line in
:data:`ACTIONS`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import EngineError
from ..spec import parse_json
from ..vod import Service
from .errors import ApiError, invalid, missing

Params = Mapping[str, str]


@dataclass(frozen=True)
class ActionContext:
    """What a handler may need besides the store: the folders RegisterMedia may read from."""

    media_roots: tuple[Path, ...] = ()


def _required(params: Params, name: str) -> str:
    value = params.get(name, "")
    if not value.strip():
        raise missing(name)
    return value.strip()


def _json(params: Params, name: str, *, required: bool = True) -> Any:
    text = _required(params, name) if required else params.get(name, "").strip()
    if not text:
        return None
    try:
        return parse_json(text, name)  # too deep, too many digits, a lone surrogate: InvalidParameter too
    except json.JSONDecodeError as exc:
        raise invalid(name, f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    except EngineError as exc:
        raise invalid(name, exc.message) from None


def add_vod_template(service: Service, params: Params, ctx: ActionContext) -> dict[str, Any]:
    template_type = params.get("TemplateType", "DynamicImage")
    if template_type != "DynamicImage":
        raise invalid("TemplateType", f"only DynamicImage templates are made here, got {template_type!r}")
    template = service.add_template_body({"TemplateType": template_type, "Name": _required(params, "Name"),
                                          "TemplateConfig": _json(params, "TemplateConfig")})
    return {"VodTemplateId": template.id}


def update_vod_template(service: Service, params: Params, ctx: ActionContext) -> dict[str, Any]:
    template_id = _required(params, "VodTemplateId")
    name = params.get("Name") or None
    config = _json(params, "TemplateConfig", required=False)
    if config is None:
        template = service.update_template(template_id, name=name)
    else:
        template = service.update_template(template_id, name=name, body={
            "Name": name or service.template(template_id).name, "TemplateConfig": config})
    return {"VodTemplateId": template.id}


def get_vod_template(service: Service, params: Params, ctx: ActionContext) -> dict[str, Any]:
    return {"VodTemplate": service.template_info(_required(params, "VodTemplateId"))}


def list_vod_template(service: Service, params: Params, ctx: ActionContext) -> dict[str, Any]:
    template_type = params.get("TemplateType", "DynamicImage")
    templates = service.templates() if template_type == "DynamicImage" else []
    return {"VodTemplateInfoList": [service.template_info(t) for t in templates]}


def delete_vod_template(service: Service, params: Params, ctx: ActionContext) -> dict[str, Any]:
    return {"VodTemplateId": service.delete_template(_required(params, "VodTemplateId")).id}


def register_media(service: Service, params: Params, ctx: ActionContext) -> dict[str, Any]:
    items = _json(params, "RegisterMetadatas")
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) and i.get("FileURL") for i in items):
        raise invalid("RegisterMetadatas", 'a JSON list of {"FileURL": ..., "Title": ...} objects')
    return {"RegisteredMediaList": service.register_media(items, ctx.media_roots), "FailedFileURLs": []}


def get_video_info(service: Service, params: Params, ctx: ActionContext) -> dict[str, Any]:
    return service.video_info(_required(params, "VideoId"))


def submit_dynamic_image_job(service: Service, params: Params, ctx: ActionContext) -> dict[str, Any]:
    job = service.submit(_required(params, "VideoId"), _required(params, "DynamicImageTemplateId"),
                         params.get("OverrideParams") or None)
    return {"DynamicImageJob": {"JobId": job.id}}


def list_dynamic_image(service: Service, params: Params, ctx: ActionContext) -> dict[str, Any]:
    return service.list_dynamic_images(_required(params, "VideoId"))


def delete_dynamic_image(service: Service, params: Params, ctx: ActionContext) -> dict[str, Any]:
    video_id = _required(params, "VideoId")
    ids = [i.strip() for i in params.get("DynamicImageIds", "").split(",") if i.strip()]
    images = service.images(video_id)
    if ids:
        known = {image.id for image in images}
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise ApiError(404, "NoSuchResource", f"no animated image {', '.join(unknown)} of video {video_id}")
    for image in images:
        if not ids or image.id in ids:
            service.delete_image(image.id)
    return {}


def set_message_callback(service: Service, params: Params, ctx: ActionContext) -> dict[str, Any]:
    callback_type = params.get("CallbackType", "HTTP")
    if callback_type != "HTTP":
        raise invalid("CallbackType", f"only HTTP callbacks are sent from here, got {callback_type!r}")
    service.set_message_callback(_required(params, "CallbackURL"), auth_switch=params.get("AuthSwitch") or None,
                                 auth_key=params.get("AuthKey") or None,
                                 event_types=params.get("EventTypeList") or None)
    return {}


def get_message_callback(service: Service, params: Params, ctx: ActionContext) -> dict[str, Any]:
    return {"MessageCallback": service.message_callback()}


def delete_message_callback(service: Service, params: Params, ctx: ActionContext) -> dict[str, Any]:
    service.delete_message_callback()
    return {}


Handler = Callable[[Service, Params, ActionContext], dict[str, Any]]

ACTIONS: dict[str, Handler] = {
    "AddVodTemplate": add_vod_template,
    "UpdateVodTemplate": update_vod_template,
    "GetVodTemplate": get_vod_template,
    "ListVodTemplate": list_vod_template,
    "DeleteVodTemplate": delete_vod_template,
    "RegisterMedia": register_media,
    "GetVideoInfo": get_video_info,
    "SubmitDynamicImageJob": submit_dynamic_image_job,
    "ListDynamicImage": list_dynamic_image,
    "DeleteDynamicImage": delete_dynamic_image,
    "SetMessageCallback": set_message_callback,
    "GetMessageCallback": get_message_callback,
    "DeleteMessageCallback": delete_message_callback,
}


def action_names() -> Sequence[str]:
    return sorted(ACTIONS)
