"""Sample mails for the demo: Japanese applications as real clients send them."""

from __future__ import annotations

from datetime import UTC, datetime
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid

RECRUITING = "jobs@demo.example.co.jp"


def _headers(message: MIMEText | MIMEMultipart, sender: tuple[str, str], subject: str,
             charset: str) -> None:
    message["From"] = formataddr((str(Header(sender[0], charset)), sender[1]))
    message["To"] = RECRUITING
    message["Subject"] = Header(subject, charset)  # type: ignore[assignment]
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender[1].split("@")[1])


def direct_application_jis() -> bytes:
    """A direct application in ISO-2022-JP with a résumé named 履歴書.pdf (RFC 2231)."""
    body = ("採用ご担当者様\n\nWebエンジニア職に応募いたします。山田太郎と申します。\n"
            "Python と TypeScript で5年の開発経験があります。\n電話: 03-1234-5678\n\n"
            "よろしくお願いいたします。\n山田 太郎\n")
    message = MIMEMultipart()
    message.attach(MIMEText(body, "plain", "iso-2022-jp"))
    resume = MIMEApplication(b"%PDF-1.4\n% demo resume\n", "pdf")
    resume.add_header("Content-Disposition", "attachment", filename=("utf-8", "", "履歴書.pdf"))
    message.attach(resume)
    _headers(message, ("山田 太郎", "taro.yamada@example.net"),
             "【応募】Webエンジニア職 山田太郎", "iso-2022-jp")
    return message.as_bytes()


def job_board_notification() -> bytes:
    """A job board's notification (UTF-8) carrying the applicant's details in its body."""
    body = ("株式会社サンプル 採用ご担当者様\n\n"
            "求人「営業職（法人）」に新しい応募がありました。\n\n"
            "氏名：佐藤 花子\nメールアドレス：hanako.sato@example.org\n電話番号：090-1234-5678\n"
            "応募職種：営業職（法人）\n自己PR：法人営業7年。新規開拓が得意です。\n\n"
            "※このメールは送信専用アドレスから送信しています。\n")
    message = MIMEText(body, "plain", "utf-8")
    _headers(message, ("ジョブボード", "no-reply@jobboard.example"),
             "【ジョブボード】新着応募のお知らせ（営業職（法人））", "utf-8")
    return message.as_bytes()


def application_cp932() -> bytes:
    """A Shift_JIS (CP932) application with ① and ～, as older Windows clients send."""
    body = ("採用ご担当者様\r\n\r\n経理職に応募いたします。鈴木一郎です。\r\n"
            "① 日商簿記2級\r\n② 経理実務 2018年～2024年\r\n携帯: 080-9876-5432\r\n")
    head = (f"From: =?ISO-2022-JP?B?GyRCTmtMWhsoQiAbJEIwbE86GyhC?= <ichiro.suzuki@example.jp>\r\n"
            f"To: {RECRUITING}\r\n"
            f"Subject: {Header('経理職への応募', 'iso-2022-jp').encode()}\r\n"
            f"Date: {format_datetime(datetime.now(UTC))}\r\n"
            f"Message-ID: {make_msgid(domain='example.jp')}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=Shift_JIS\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n")
    return head.encode("ascii") + body.encode("cp932")


def applications() -> list[tuple[str, bytes]]:
    return [
        ("direct application (ISO-2022-JP, 履歴書.pdf)", direct_application_jis()),
        ("job-board notification (UTF-8)", job_board_notification()),
        ("direct application (Shift_JIS with ① and ～)", application_cp932()),
    ]


def _rejection(sender: str, to: str, body: str, charset: str) -> bytes:
    """A rejection as HR's client writes it, from the recruiting address to `to`."""
    message = MIMEText(body, "plain", charset)
    _headers(message, ("株式会社サンプル 採用担当", sender), "選考結果のご連絡", charset)
    del message["To"]
    message["To"] = to
    return message.as_bytes()


def sent_rejection(sender: str) -> bytes:
    """A rejection HR sent straight from their client, without mailflow's link."""
    return _rejection(sender, "hanako.sato@example.org", (
        "佐藤 花子 様\n\n先日はご応募いただきありがとうございました。\n"
        "社内で慎重に検討しました結果、今回はご縁がなかったものとさせていただきました。\n"
        "#mailflow reason=募集終了\n\n-- \n株式会社サンプル 人事部\n"), "utf-8")


def outbox_rejection(sender: str) -> bytes:
    """A finished rejection HR files in the outbox folder (send mode): mailflow sends it."""
    return _rejection(sender, "ichiro.suzuki@example.jp", (
        "鈴木 一郎 様\n\n経理職へのご応募、誠にありがとうございました。\n"
        "慎重に検討いたしました結果、誠に残念ながら今回は見送らせていただくことになりました。\n"
        "#mailflow reason=募集充足 rescout=yes\n\n-- \n株式会社サンプル 人事部\n"), "iso-2022-jp")


def rejection_draft(sender: str) -> bytes:
    """A rejection HR saved as a draft in their own client, with a `#mailflow` line for mailflow
    (reason, willingness to re-scout) that the candidate will never see."""
    return _rejection(sender, "taro.yamada@example.net", (
        "山田 太郎 様\n\nこの度は弊社求人にご応募いただき、誠にありがとうございました。\n"
        "慎重に選考を進めました結果、誠に残念ながら今回はご期待に沿えない結果となりました。\n"
        "#mailflow reason=経験年数 rescout=yes\n\n今後のご活躍をお祈り申し上げます。\n\n"
        "-- \n株式会社サンプル 人事部 採用担当\n"), "iso-2022-jp")
