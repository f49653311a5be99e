"""The console's words in English and Simplified Chinese; the browser's language or a switch."""

from __future__ import annotations

LANGS = ("zh-CN", "en")

_TEXT: dict[str, tuple[str, str]] = {
    # key: (en, zh-CN)
    "app": ("Anxin duty console", "安心 值班台"),
    "login": ("Log in", "登录"),
    "logout": ("Log out", "退出"),
    "username": ("User name", "用户名"),
    "password": ("Password", "密码"),
    "login_failed": ("Wrong user name or password.", "用户名或密码错误。"),
    "login_throttled": (
        "Too many failed logins; try again later.",
        "登录失败次数过多，请稍后再试。",
    ),
    "board": ("Alerts", "警报"),
    "residents": ("Residents & devices", "老人与设备"),
    "open_alerts": ("Open alerts", "未结警报"),
    "no_alerts": ("No open alerts.", "当前没有未处理的警报。"),
    "suspected_falls": (
        "Suspected falls (wearer prompted, nobody notified)",
        "疑似跌倒（已询问老人，未通知他人）",
    ),
    "sus.open": ("asking the wearer", "正在询问老人"),
    "sus.confirmed": ("confirmed: alert raised", "已确认：已发出警报"),
    "sus.cancelled": ("wearer is OK", "老人表示无事"),
    "kind": ("Kind", "类型"),
    "resident": ("Resident", "老人"),
    "age": ("Age", "已持续"),
    "escalation": ("Escalation", "通知进度"),
    "position": ("Last position", "最后位置"),
    "state": ("State", "状态"),
    "actions": ("Actions", "操作"),
    "note": ("Note", "备注"),
    "note_ph": ("Note (optional)", "备注（可选）"),
    "ack": ("Acknowledge", "确认接手"),
    "resolve": ("Resolve", "处理完毕"),
    "acked_by": ("Acknowledged by {by}", "已由 {by} 确认"),
    "already": ("Already {state} by {by}", "已由 {by} {state}"),
    "done_ack": ("You have it: acknowledged.", "已确认，由您处理。"),
    "done_resolve": ("Resolved.", "已处理完毕。"),
    "not_allowed": ("Your role may not do this.", "您的角色无权执行此操作。"),
    "no_such_alert": ("No such alert.", "没有该警报。"),
    "new_critical": ("New critical alert", "新的紧急警报"),
    "sound_on": ("Sound on", "开启提示音"),
    "live": ("live", "实时"),
    "offline_stream": ("reconnecting…", "正在重连…"),
    "opened": ("Opened", "发生时间"),
    "timeline": ("Timeline", "事件记录"),
    "map": ("Positions and geofences", "位置与电子围栏"),
    "vitals": ("Vitals, last 24 hours", "近24小时生命体征"),
    "no_positions": ("No position in the last day.", "近一天没有位置数据。"),
    "no_vitals": ("No vitals in the last 24 hours.", "近24小时没有生命体征数据。"),
    "store_error": ("The time-series store did not answer.", "时序数据库无响应。"),
    "not_called": ("nobody called yet", "尚未通知任何人"),
    "step": ("step {n}", "第{n}步"),
    "device": ("Device", "设备"),
    "online": ("online", "在线"),
    "offline": ("offline", "离线"),
    "unknown": ("unknown", "未知"),
    "battery": ("Battery", "电量"),
    "last_seen": ("Last seen", "最后上报"),
    "worn": ("Worn", "佩戴"),
    "yes": ("yes", "是"),
    "no": ("no", "否"),
    "status": ("Status", "状态"),
    "timezone": ("Time zone", "时区"),
    "details": ("Details", "详情"),
    "back": ("Back to the board", "返回警报列表"),
    "outside": ("outside every fence", "不在任何围栏内"),
    "inside": ("inside {name}", "在“{name}”内"),
    "from_fence": ("{m} m from {name}", "距“{name}” {m} 米"),
    "ago": ("{t} ago", "{t}前"),
    "forbidden": (
        "Refused: the form has expired; reload the page.",
        "请求被拒绝：页面已过期，请刷新。",
    ),
    # kinds, severities, states, channels, outcomes
    "kind.sos": ("SOS", "紧急呼叫"),
    "kind.fall": ("Fall", "跌倒"),
    "kind.wander": ("Wandering", "走失"),
    "kind.vitals": ("Vitals", "生命体征异常"),
    "kind.device": ("Device", "设备问题"),
    "sev.critical": ("critical", "紧急"),
    "sev.warning": ("warning", "警告"),
    "st.open": ("open", "新警报"),
    "st.notifying": ("notifying", "通知中"),
    "st.acknowledged": ("acknowledged", "已确认"),
    "st.resolved": ("resolved", "已处理"),
    "st.cancelled": ("cancelled", "已取消"),
    "ch.voice": ("call", "电话"),
    "ch.sms": ("SMS", "短信"),
    "ch.device": ("device", "设备"),
    "ch.console": ("console", "值班台"),
    "n.pending": ("waiting", "待发送"),
    "n.sending": ("sending", "发送中"),
    "n.sent": ("sent", "已发送"),
    "n.ringing": ("ringing", "呼叫中"),
    "n.failed": ("failed", "失败"),
    "n.skipped": ("skipped", "已跳过"),
    "n.unknown": ("unknown", "未知"),
    "n.answered": ("answered", "已接听"),
    "n.acknowledged": ("acknowledged", "已确认"),
    "n.no_answer": ("no answer", "无人接听"),
    "n.busy": ("busy", "占线"),
    "ev.opened": ("opened", "警报产生"),
    "ev.escalated": ("escalated", "升级通知"),
    "ev.notified": ("notified", "已通知"),
    "ev.not_reached": ("not reached", "未联系上"),
    "ev.no_answer": ("no answer", "无人接听"),
    "ev.merged": ("merged a duplicate", "合并重复警报"),
    "ev.severity_raised": ("severity raised", "级别提高"),
    "ev.acknowledged": ("acknowledged", "已确认"),
    "ev.ack_recorded": ("later acknowledgement", "重复确认"),
    "ev.resolved": ("resolved", "已处理"),
    "ev.resolve_recorded": ("later resolution", "重复处理"),
    "ev.cancelled": ("cancelled", "已取消"),
    "ev.exhausted": ("chain exhausted", "通知已用尽"),
    "ev.reopened": ("reopened", "重新打开"),
    "ev.ack_notice": ("wearer told: help is coming", "已告知老人：救助在路上"),
    "ev.closed_notice": ("closed notice sent", "已发送结束通知"),
    "v.hr": ("Heart rate /min", "心率 次/分"),
    "v.spo2": ("SpO₂ %", "血氧 %"),
    "v.bp": ("Blood pressure mmHg", "血压 mmHg"),
    "v.rr": ("Respiration /min", "呼吸 次/分"),
    "v.temp": ("Temperature °C", "体温 °C"),
}


def pick_language(cookie: str | None, accept: str | None) -> str:
    """The switch (cookie) wins; then the first of the browser's languages we have; zh-CN."""
    if cookie in LANGS:
        return cookie
    for part in (accept or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "zh-CN"


class Translator:
    def __init__(self, lang: str):
        self.lang = lang if lang in LANGS else "zh-CN"
        self._i = 1 if self.lang == "zh-CN" else 0

    def __call__(self, key: str, **kw: object) -> str:
        pair = _TEXT.get(key)
        text = pair[self._i] if pair else key.split(".", 1)[-1].replace("_", " ")
        return text.format(**kw) if kw else text

    def duration(self, seconds: float) -> str:
        s = max(0, int(seconds))
        zh = self.lang == "zh-CN"
        if s < 60:
            return f"{s}秒" if zh else f"{s} s"
        if s < 3600:
            return f"{s // 60}分{s % 60:02d}秒" if zh else f"{s // 60} min {s % 60:02d} s"
        if s < 86400:
            return (
                f"{s // 3600}小时{s % 3600 // 60}分"
                if zh
                else f"{s // 3600} h {s % 3600 // 60} min"
            )
        return (
            f"{s // 86400}天{s % 86400 // 3600}小时"
            if zh
            else f"{s // 86400} d {s % 86400 // 3600} h"
        )

    def js_strings(self) -> dict[str, str]:
        """What the page's script needs to say itself."""
        keys = ("new_critical", "live", "offline_stream", "forbidden", "done_ack", "done_resolve")
        return {k: self(k) for k in keys}
