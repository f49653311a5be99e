"""What people hear and read, in the resident's or contact's language (zh-CN and en-US).

These texts carry the resident's name and address: they go to Twilio and to the contact, and are
never logged or stored (they are built when sent).
"""

from __future__ import annotations

import re
from typing import Any

from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

_KIND = {
    "zh-CN": {
        "fall": "跌倒",
        "wander": "离开安全区域",
        "vitals": "生命体征异常",
        "sos": "按下紧急呼救",
        "device": "设备异常",
    },
    "en-US": {
        "fall": "a fall",
        "wander": "left the safe area",
        "vitals": "abnormal vital signs",
        "sos": "pressed SOS",
        "device": "a device problem",
    },
}
_SEVERITY = {
    "zh-CN": {"critical": "紧急", "warning": "提醒"},
    "en-US": {"critical": "critical", "warning": "warning"},
}
ACK_WORDS = frozenset({"1", "ok", "好", "收到", "好的"})


def language(*choices: str | None) -> str:
    """The first language given, as one of the two we speak."""
    for choice in choices:
        if choice:
            return "zh-CN" if choice.lower().startswith("zh") else "en-US"
    return "zh-CN"


def where(alert: dict[str, Any], address: str | None, lang: str) -> str:
    if address:
        return address
    loc = (alert.get("details") or {}).get("location")
    if isinstance(loc, dict) and "lat" in loc and "lon" in loc:
        if lang == "zh-CN":
            return f"最后位置 纬度 {loc['lat']}，经度 {loc['lon']}"
        return f"last position latitude {loc['lat']}, longitude {loc['lon']}"
    return "位置未知" if lang == "zh-CN" else "position unknown"


def alert_text(alert: dict[str, Any], name: str, address: str | None, lang: str) -> str:
    kind = _KIND[lang].get(alert["kind"], alert["kind"])
    sev = _SEVERITY[lang].get(alert["severity"], alert["severity"])
    place = where(alert, address, lang)
    if lang == "zh-CN":
        return f"安心{sev}警报：{name}{kind}。地点：{place}。"
    return f"Anxin {sev} alert: {name}, {kind}. Where: {place}."


def voice_twiml(
    alert: dict[str, Any], name: str, address: str | None, lang: str, gather_url: str
) -> str:
    """Who, what, where, then "press 1 to acknowledge" (said twice), then goodbye."""
    text = alert_text(alert, name, address, lang)
    prompt = "确认由您处理请按 1。" if lang == "zh-CN" else "Press 1 to acknowledge."
    bye = "未收到确认，再见。" if lang == "zh-CN" else "Not acknowledged. Goodbye."
    resp = VoiceResponse()
    gather = resp.gather(num_digits=1, timeout=8, action=gather_url, method="POST")
    gather.say(text + prompt, language=lang)
    gather.say(prompt, language=lang)
    resp.say(bye, language=lang)
    return str(resp)


def gather_reply(acked: bool, first: bool, lang: str) -> str:
    resp = VoiceResponse()
    if not acked:
        resp.say(
            "未确认。再见。" if lang == "zh-CN" else "Not acknowledged. Goodbye.", language=lang
        )
    elif first:
        resp.say(
            "已确认，谢谢，请尽快处理。" if lang == "zh-CN" else "Acknowledged. Thank you.",
            language=lang,
        )
    else:
        resp.say(
            "已有其他人确认，谢谢。" if lang == "zh-CN" else "Someone else already has it. Thanks.",
            language=lang,
        )
    resp.hangup()
    return str(resp)


def sms_text(alert: dict[str, Any], name: str, address: str | None, lang: str, code: str) -> str:
    """The alert, and the reply codes that name it: ``1a`` acknowledges, ``2a`` resolves."""
    text = alert_text(alert, name, address, lang)
    if lang == "zh-CN":
        return f"【安心】{text}回复 1{code} 确认由您处理，2{code} 表示已处理完毕。"
    return f"{text} Reply 1{code} to acknowledge, 2{code} to resolve."


def closed_text(state: str, name: str, lang: str) -> str:
    if state == "cancelled":
        if lang == "zh-CN":
            return f"【安心】{name}的警报已取消（误报），无需处理，抱歉打扰。"
        return f"Anxin: the alert for {name} was cancelled (false alarm). Sorry, no action needed."
    if lang == "zh-CN":
        return f"【安心】{name}的警报已处理完毕，谢谢。"
    return f"Anxin: the alert for {name} has been resolved. Thank you."


def device_text(purpose: str, lang: str) -> str:
    if purpose == "ack_notice":
        return "已有人收到您的求助，帮助马上就到。" if lang == "zh-CN" else "Help is coming."
    return "正在联系您的护理人员。" if lang == "zh-CN" else "Contacting your carers now."


def device_command(row: dict[str, Any], resident_language: str | None) -> dict[str, Any]:
    """The ``device-commands`` record of a device outbox row: ``notify`` with the text in the
    resident's language, or ``cancel`` when the alert was closed."""
    base = {"device_id": row["device_id"], "alert_id": row["alert_id"]}
    if row["purpose"] == "closed_notice":
        return {**base, "cmd": "cancel"}
    text = device_text(row["purpose"], language(resident_language))
    return {**base, "cmd": "notify", "text": text}


def sms_reply(text: str | None) -> str:
    """TwiML answering an inbound SMS with ``text`` (None: no reply message)."""
    resp = MessagingResponse()
    if text is not None:
        resp.message(text)
    return str(resp)


def hangup() -> str:
    resp = VoiceResponse()
    resp.hangup()
    return str(resp)


def reply_text(outcome: str, lang: str) -> str:
    texts = {
        "first": ("已确认，谢谢，请尽快处理。", "Acknowledged, thank you."),
        "later": ("已有其他人确认，谢谢。", "Someone else already acknowledged it. Thank you."),
        "resolved": ("已标记为处理完毕，谢谢。", "Resolved, thank you."),
        "closed": ("该警报已结束，谢谢。", "That alert is already closed. Thank you."),
        "none": ("没有需要您确认的警报。", "There is no alert for you to acknowledge."),
        "unknown_code": ("没有这个编号的警报。", "No alert has that code."),
        "help": (
            "回复短信中的编号确认警报，如 1a。",
            "Reply with the code in the alert message, e.g. 1a, to acknowledge.",
        ),
    }
    zh, en = texts[outcome]
    return zh if lang == "zh-CN" else en


def which_text(choices: list[tuple[str, str, str]], action: str, lang: str) -> str:
    """ "Which one?" for a bare reply while several alerts told to this number are open:
    ``choices`` are (code, resident name, kind), all of which this recipient was already sent."""
    digit = "2" if action == "resolve" else "1"
    if lang == "zh-CN":
        listed = "；".join(f"{digit}{c} {name}{_KIND[lang].get(k, k)}" for c, name, k in choices)
        return f"您有{len(choices)}条警报，请回复编号：{listed}"
    listed = "; ".join(f"{digit}{c} {name}, {_KIND[lang].get(k, k)}" for c, name, k in choices)
    return f"{len(choices)} alerts are open; reply with one code: {listed}"


ACK_RE = re.compile(r"^([12])([a-z]{1,3})$")


def parse_reply(body: str) -> tuple[str, str | None] | None:
    """An SMS reply as (``acknowledge``/``resolve``, code or None); None: not an answer.
    ``1a``/``2a`` name the alert; ``1``, ``OK``, ``好``, ``收到`` (and ``2``) alone do not."""
    text = "".join(body.split()).strip("。.!！").lower()
    match = ACK_RE.match(text)
    if match:
        return ("acknowledge" if match.group(1) == "1" else "resolve"), match.group(2)
    if text in ACK_WORDS:
        return "acknowledge", None
    if text == "2":
        return "resolve", None
    return None
