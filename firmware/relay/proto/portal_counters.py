"""The admin page's counters in the page's language: rows(counters, lang) -> [(label, value text)].

counters is what status.snapshot() and services.info() give (nested dicts and lists of numbers and
words). Known keys get their label in Kazakh, Russian or English, refusal reasons theirs; byte counts
are shown in MB; nested tables become "label: value" lists. Never a Python repr, never a raw key
where a label exists (an unknown key is shown with spaces for underscores). Imported only when the
admin page is asked for, so its words cost a board nothing until then.
"""

# key -> (en, ru, kk). Counters, then refusal reasons (the keys of "refused").
_LABELS = {
    "sessions": ("connections open", "открытых соединений", "ашық қосылымдар"),
    "tunnels_open": ("tunnels open", "открытых туннелей", "ашық туннельдер"),
    "tunnels_total": ("tunnels since start", "туннелей с запуска", "іске қосылғаннан бергі туннельдер"),
    "bytes_up": ("sent out", "отправлено", "жіберілді"),
    "bytes_down": ("received", "получено", "алынды"),
    "udp_associations": ("UDP (calls) open", "UDP (звонки) открыто", "ашық UDP (қоңыраулар)"),
    "udp_datagrams": ("UDP packets", "UDP-пакетов", "UDP пакеттері"),
    "version": ("version", "версия", "нұсқа"),
    "runtime": ("runs on", "среда", "орта"),
    "io": ("I/O", "ввод-вывод", "енгізу-шығару"),
    "heap_used": ("memory in use", "занято памяти", "пайдаланылған жад"),
    "rss_kib": ("memory of the process, KiB", "память процесса, КиБ", "процесс жады, КиБ"),
    "mtproto": ("MTProto proxy", "MTProto-прокси", "MTProto-прокси"),
    "uplink": ("connection to the outside", "связь с внешним миром", "сыртқы байланыс"),
    "upstreams": ("upstream proxies", "вышестоящие прокси", "жоғары прокси"),
    "share": ("sharing", "разделение канала", "арнаны бөлу"),
    "platform": ("board", "плата", "тақта"),
    "answered": ("answered", "отвечено", "жауап берілді"),
    "forwarded": ("forwarded", "переслано", "жіберілді"),
    "cached": ("from cache", "из кэша", "кэштен"),
    "dropped": ("dropped", "отброшено", "тасталды"),
    "clock_known": ("clock known", "часы известны", "сағат белгілі"),
    "clock": ("clock", "часы", "сағат"),
    "clock_unknown": ("without a clock", "без часов", "сағатсыз"),
    "known": ("known", "известны", "белгілі"),
    "source": ("from", "источник", "көзі"),
    "floor": ("not before", "не раньше", "ерте емес"),
    "syncs": ("synchronisations", "синхронизаций", "синхрондау"),
    "secrets": ("secrets", "секреты", "құпиялар"),
    "kind": ("kind", "вид", "түрі"),
    "connects": ("connections", "подключений", "қосылымдар"),
    "open": ("open", "открыто", "ашық"),
    "up": ("working", "работает", "жұмыс істеп тұр"),
    "since_s": ("for, s", "в этом состоянии, с", "осы күйде, с"),
    "changes": ("changes", "изменений", "өзгерістер"),
    "name": ("name", "имя", "аты"),
    "healthy": ("answers", "отвечает", "жауап береді"),
    "stage": ("stage", "стадия", "кезең"),
    "budget_left_today": ("left today", "осталось сегодня", "бүгін қалғаны"),
    "budget_left_total": ("left in total", "осталось всего", "барлығы қалғаны"),
    "clients_today": ("phones today", "телефонов сегодня", "бүгінгі телефондар"),
    "waiting": ("waiting", "ожидает", "күтуде"),
    "state": ("state", "состояние", "күйі"),
    "detail": ("detail", "подробно", "толығырақ"),
    "ap": ("access point", "точка доступа", "кіру нүктесі"),
    # refusal reasons (stats.R_*, mtproto_session's mtproto-*)
    "guard": ("forbidden destination", "запрещённый адрес", "тыйым салынған мекенжай"),
    "auth": ("wrong password", "неверный пароль", "қате құпиясөз"),
    "full": ("relay full", "устройство заполнено", "құрылғы толы"),
    "client-full": ("too many from one phone", "слишком много от одного телефона", "бір телефоннан тым көп"),
    "unreachable": ("unreachable", "недоступно", "қолжетімсіз"),
    "timeout": ("timed out", "истекло время", "уақыт бітті"),
    "command": ("unsupported command", "неподдерживаемая команда", "қолдау көрсетілмейтін команда"),
    "address-type": ("unsupported address", "неподдерживаемый адрес", "қолдау көрсетілмейтін мекенжай"),
    "protocol": ("protocol error", "ошибка протокола", "протокол қатесі"),
    "handshake-timeout": ("too slow to start", "слишком медленное начало", "тым баяу басталды"),
    "failed": ("failed", "не удалось", "сәтсіз"),
    "uplink-down": ("no connection outside", "нет связи с внешним миром", "сыртқы байланыс жоқ"),
    "policy": ("not allowed here", "не разрешено здесь", "мұнда рұқсат етілмеген"),
    "quota": ("phone's share used", "доля телефона исчерпана", "телефон үлесі таусылды"),
    "budget": ("data used up", "трафик исчерпан", "трафик таусылды"),
    "mtproto-secret": ("MTProto: wrong secret", "MTProto: неверный секрет", "MTProto: қате құпия"),
    "mtproto-replay": ("MTProto: replayed", "MTProto: повтор", "MTProto: қайталау"),
    "mtproto-clock": ("MTProto: clock", "MTProto: часы", "MTProto: сағат"),
    "mtproto-protocol": ("MTProto: protocol error", "MTProto: ошибка протокола", "MTProto: протокол қатесі"),
    "mtproto-dc": ("MTProto: unknown data centre", "MTProto: неизвестный ДЦ", "MTProto: белгісіз ДО"),
}
# Keys that are both a counter and a refusal reason: the label depends on where they stand.
_REASON_ONLY = {
    "refused": ("destination refused", "адрес отказал", "мекенжай бас тартты"),
    "dns": ("name not found", "имя не найдено", "атау табылмады"),
}
_COUNTER_SAME = {"refused": ("refused", "отказов", "бас тартулар"), "dns": ("DNS", "DNS", "DNS")}
_WORDS = {"yes": ("yes", "да", "иә"), "no": ("no", "нет", "жоқ"), "none": ("none", "нет", "жоқ"),
          "mb": ("MB", "МБ", "МБ")}
_LANG = {"en": 0, "ru": 1, "kk": 2}


def label(key, lang, reason=False):
    i = _LANG.get(lang, 0)
    if reason and key in _REASON_ONLY:
        return _REASON_ONLY[key][i]
    if not reason and key in _COUNTER_SAME:
        return _COUNTER_SAME[key][i]
    got = _LABELS.get(key)
    return got[i] if got else str(key).replace("_", " ")


def value(key, v, lang, reasons=False):
    """Text for one value; key is the name it is stored under (decides MB, and reasons under "refused")."""
    i = _LANG.get(lang, 0)
    if v is None:
        return "—"
    if v is True or v is False:
        return _WORDS["yes" if v else "no"][i]
    if type(v) is int and (key.startswith("bytes_") or key.startswith("budget_left") or key == "heap_used"):
        return "%d.%d %s" % (v // 1000000, (v % 1000000) // 100000, _WORDS["mb"][i])
    if type(v) is dict:
        sub = key == "refused"
        parts = []
        for k in sorted(v):
            parts.append("%s: %s" % (label(k, lang, sub), value(k, v[k], lang)))
        return ", ".join(parts) or ("0" if sub else _WORDS["none"][i])
    if type(v) is list or type(v) is tuple:
        return "; ".join(value(key, x, lang) for x in v) or _WORDS["none"][i]
    return str(v)


def rows(counters, lang):
    return [(label(k, lang), value(k, counters[k], lang)) for k in sorted(counters)]
