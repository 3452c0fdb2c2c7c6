"""The consent page's HTML (pure): Japanese by default, English with `?lang=en`.

It names the company and lists every declared purpose of use (`[privacy.purposes]`) with its
description and the candidate's current state, in one form with a checkbox per purpose, and asks
whether they wish to hear about future openings (再応募意向: two radio buttons, neither chosen
until they say it); every value is HTML-escaped. No name, address or phone of the candidate is
shown: whoever holds the link sees only what each purpose means and whether it holds.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

from mailflow.settings.config import Purpose

TEXTS: dict[str, dict[str, str]] = {
    "ja": {
        "title": "個人情報の利用目的とご同意", "other": "English", "other_lang": "en",
        "intro": "{company}は、ご応募いただいた方の個人情報を次の目的で利用します。"
                 "目的ごとに、ご同意いただけるものにチェックを入れて「保存する」を押してください。",
        "holds": "同意あり", "not_held": "同意なし",
        "notified": "応募時にお知らせした利用目的です（チェックを外すと停止します）",
        "granted": "{date}にご同意いただきました", "withdrawn": "{date}に停止しました",
        "save": "保存する", "note": "このページを開いただけでは何も変更されません。",
        "saved": "保存しました。", "unchanged": "変更はありませんでした。",
        "expired_title": "もう一度開いてください",
        "expired": "このページの有効期限が切れたか、正しく送信されませんでした。"
                   "何も変更していません。お手数ですが、メールのリンクからもう一度開いてください。",
        "unknown_title": "リンクが見つかりません",
        "unknown": "このリンクは無効か、すでに使えなくなっています。",
        "intent": "今後、新しい求人が出たときのご案内を希望されますか？",
        "intent_yes": "希望する", "intent_no": "希望しない",
        "intent_note": "ご案内は、上の「新しいポジションが開いたときの再度のご連絡」などへの"
                       "ご同意がある場合にのみお送りします。",
    },
    "en": {
        "title": "How we use your personal data, and your consent", "other": "日本語",
        "other_lang": "ja",
        "intro": "{company} uses the personal data of applicants for the purposes below. Tick "
                 "each purpose you agree to and press \u201cSave\u201d.",
        "holds": "consented", "not_held": "not consented",
        "notified": "a purpose stated when you applied (untick it to stop it)",
        "granted": "you agreed on {date}", "withdrawn": "stopped on {date}",
        "save": "Save", "note": "Opening this page changes nothing.",
        "saved": "Saved.", "unchanged": "Nothing was changed.",
        "expired_title": "Please open the page again",
        "expired": "This page has expired or was not sent correctly; nothing was changed. "
                   "Please open the link in the mail once more.",
        "unknown_title": "Link not found",
        "unknown": "This link is not valid, or no longer in use.",
        "intent": "Would you like to hear from us when new positions open?",
        "intent_yes": "Yes, please", "intent_no": "No, thank you",
        "intent_note": "We write only while you consent to a purpose above that covers it "
                       "(such as contacting you again when a new position opens).",
    },
}


def language(asked: str | None) -> str:
    return "en" if asked == "en" else "ja"


@dataclass(frozen=True)
class PurposeState:
    """One purpose as the page shows it: whether it holds, and on what basis."""

    name: str
    holds: bool
    basis: str  # "notified" | "granted" | "withdrawn" | "none"
    at: str = ""  # when the candidate said it (ISO), for granted/withdrawn


def _basis(state: PurposeState, text: Mapping[str, str]) -> str:
    if state.basis in ("granted", "withdrawn"):
        return text[state.basis].format(date=state.at[:10])
    return text["notified"] if state.basis == "notified" else ""


def _page(lang: str, title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="robots" content="noindex">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title></head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def _intent(text: Mapping[str, str], wish: bool | None) -> str:
    """The re-application question: `wish` as recorded (None: not said, nothing chosen)."""
    esc = html.escape
    choices = "".join(
        f'<label><input type="radio" name="intent" value="{value}"'
        f'{" checked" if wish is want else ""}> {esc(text[key])}</label> '
        for value, key, want in (("yes", "intent_yes", True), ("no", "intent_no", False)))
    return (f"<fieldset><legend>{esc(text['intent'])}</legend>\n{choices}\n"
            f"<br><small>{esc(text['intent_note'])}</small></fieldset>\n")


def consent_page(lang: str, company: str, action: str, csrf: str,
                 purposes: Mapping[str, Purpose], states: list[PurposeState],
                 notice: str = "", intent: bool | None = None) -> str:
    """The page: the company, each purpose with its description and state, the question of
    re-application (`intent`: the wish recorded), the form."""
    text = TEXTS[lang]
    esc = html.escape
    rows = []
    for state in states:
        description = getattr(purposes[state.name], lang)
        checked = " checked" if state.holds else ""
        said = text["holds"] if state.holds else text["not_held"]
        basis = _basis(state, text)
        rows.append(
            f'<li><label><input type="checkbox" name="consent" value="{esc(state.name)}"'
            f"{checked}> {esc(description)}</label> — <strong>{esc(said)}</strong>"
            + (f"<br><small>{esc(basis)}</small>" if basis else "")
            + f'<input type="hidden" name="shown" value="{esc(state.name)}"></li>')
    other = f"{action.partition('?')[0]}?lang={text['other_lang']}"
    body = (f'<p><a href="{esc(other)}" hreflang="{text["other_lang"]}">{esc(text["other"])}'
            "</a></p>\n"
            + (f'<p role="status"><strong>{esc(notice)}</strong></p>\n' if notice else "")
            + f"<p>{esc(text['intro'].format(company=company))}</p>\n"
            f'<form method="post" action="{esc(action)}">\n'
            f'<input type="hidden" name="csrf" value="{esc(csrf)}">\n'
            f"<ul>\n{chr(10).join(rows)}\n</ul>\n"
            + _intent(text, intent)
            + f'<button type="submit">{esc(text["save"])}</button>\n</form>\n'
            f"<p><small>{esc(text['note'])}</small></p>")
    return _page(lang, text["title"], body)


def expired_page(lang: str) -> str:
    text = TEXTS[lang]
    return _page(lang, text["expired_title"], f"<p>{html.escape(text['expired'])}</p>")


def unknown_page(lang: str) -> str:
    text = TEXTS[lang]
    return _page(lang, text["unknown_title"], f"<p>{html.escape(text['unknown'])}</p>")
