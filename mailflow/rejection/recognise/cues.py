"""The cues a rejection (or its opposite) is recognised by: one table, each cue named and weighed.

A cue is a regular expression over one normalised sentence (`wording.normalise`) of the Subject
or of HR's own text. Kinds:

- ``rejection`` (weight 3): a statement that the candidate is not taken (ご縁がなかった, 見送り,
  採用には至りませんでした, ご期待に沿いかねる, we regret to inform …); ``regret`` (weight 1): the
  words that go with one (残念ながら, お祈り申し上げます, 書類は破棄いたします …);
- ``counter`` (negative): what a rejection never says (通過されました, 内定, 二次面接のご案内,
  日程調整, 辞退を承りました, 今しばらくお待ちください …);
- ``notice`` (weight 1): the mail gives a selection result (選考結果, 慎重に検討した結果 …).

Two twists, both per sentence: a rejection cue in a conditional sentence (…となる場合もございます,
合否にかかわらず …) describes the process, not this candidate: it does not count and the
sentence counts as ``process`` instead; a counter cue followed closely by a negation
(通過とはなりませんでした, 内定には至りませんでした, 次の選考へのご案内はいたしかねます) is a
rejection statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["rejection", "regret", "counter", "notice"]
Where = Literal["subject", "body"]

_I = re.IGNORECASE


@dataclass(frozen=True)
class Cue:
    name: str
    kind: Kind
    weight: int
    pattern: re.Pattern[str]
    where: tuple[Where, ...] = ("body",)
    negated_is_rejection: bool = False  # a counter cue that a negation turns into a rejection

    def search(self, sentence: str) -> re.Match[str] | None:
        return self.pattern.search(sentence)


def _cue(name: str, kind: Kind, weight: int, pattern: str, *where: Where,
         negated_is_rejection: bool = False) -> Cue:
    return Cue(name, kind, weight, re.compile(pattern, _I), where or ("body",),
               negated_is_rejection)


CONDITIONAL = re.compile(
    r"場合|こと(?:も|が)(?:あります|ございます|あり得|ありえ)|可能性|かもしれ|(?<!にも)かかわらず|"
    r"(?<!にも)関わらず|"
    r"によっては|次第で|際は|際には|\bif\b|\bwhether\b|\bmay\b|\bmight\b|\bregardless\b", _I)
# The sentence speaks of an earlier case: 前回ご紹介した案件では残念な結果となりましたが….
EARLIER = re.compile(r"前回|以前の|先般の(?:案件|求人)")
# A negation close after a counter cue: 通過とはなりませんでした, 内定には至らず, ご案内いたしかね….
NEGATION_AFTER = re.compile(
    r"^.{0,16}?(?:ませ(?!ん(?:か|ので))|なかっ|なら(?:ず|な)|ない|なく|至ら|至り|かね|かなわ|"
    r"かないま|できな|でき(?:ず|ま?せ)|見送|見合わせ|差し控え)")
ENGLISH_NOT = re.compile(r"\b(?:not|unable|cannot|can't|won't|no longer)\b", _I)
REPLY_SUBJECT = re.compile(r"^\s*(?:re|返信|aw)\s*[:：]", _I)

CUES: tuple[Cue, ...] = (
    # -- statements of a rejection ------------------------------------------------------------
    _cue("ご縁がない", "rejection", 3,
         r"ご?縁(?:が|は|に|も)?(?:.{0,4})?(?:なかった|なく|ない|ございません|ありません|"
         r"恵まれ(?:ず|な|ませ)|つながら|結ばれ(?:ず|な|ませ))|"
         r"ご?縁を(?:いただく|結ぶ|持つ)ことが?(?:でき|かな)(?:ませ|ず|な)"),
    _cue("見送り", "rejection", 3, r"見送", "subject", "body"),
    _cue("見合わせ", "rejection", 3, r"見合わせ"),
    _cue("不採用", "rejection", 3, r"不採用|不合格", "subject", "body"),
    _cue("至らない", "rejection", 3,
         r"(?:採用|内定|合格|通過|ご期待|次|決定|ご縁|お迎え).{0,10}至(?:ら|りませ|りま?せん)|"
         r"至らな(?:い|かった)結果|(?:一緒に|ともに|共に)(?:働|仕事).{0,15}至(?:ら|りませ)|"
         r"という(?:結論|判断)には至(?:ら|りませ)"),
    _cue("難しいという結論", "rejection", 3,
         r"(?:ご用意|ご案内|採用|お迎え|ご縁|ご期待に沿うこと|選考を進めること|ご紹介)(?:が|は|する"
         r"こと(?:が|は))(?:難しい|困難)"),
    _cue("選考の終了", "rejection", 3,
         r"選考(?:を|は)(?:終了|打ち切)|(?:選考|ご応募)(?:の機会)?を?ご用意(?:でき|いたしかね)"
         r"(?:ず|な|ませ)"),
    _cue("採用枠の充足", "rejection", 3,
         r"(?:採用枠|募集枠|定員|採用予定(?:人数|数))(?:が|に|は)(?:充足|達し|埋ま)|"
         r"(?:充足|決定)いたしましたため"),
    _cue("今回は沿えない", "rejection", 3,
         r"今回(?:は|につきましては|の(?:選考|ご応募))?.{0,30}(?:期待|希望|貴意|意向|ご要望)(?:に|には)"
         r"(?:お)?沿(?:えな|えず|えませ|いかね|うことが?でき(?:ず|な|ませ|かね)|うことは?かな"
         r"(?:わ|いませ)|わな|わず)"),
    _cue("沿えない", "rejection", 2,
         r"(?:期待|希望|貴意|意向|ご要望)(?:に|には)(?:お)?沿(?:えな|えず|えませ|いかね|いか"
         r"ねる|うことが?でき(?:ず|な|ませ|かね)|うことは?かな(?:わ|いませ)|わな|わず)"),
    _cue("他の方に決定", "rejection", 3,
         r"(?:他の|別の|ほかの|他)(?:[^、。]{0,6}?)(?:方|候補者|応募者|人材|スタッフ).{0,25}"
         r"(?:お願い|決定|採用|進め|内定|お迎え)"),
    _cue("お断り", "rejection", 3,
         r"(?:選考|採用|ご応募|今回)[^。]{0,12}お断り(?:させて|いたし|申し上げ|する(?:こと|運び)|"
         r"とな)"),
    _cue("差し控え", "rejection", 3, r"採用.{0,8}(?:差し)?控え|(?:差し)?控えさせて"),
    _cue("ご参加いただけない", "rejection", 3,
         r"(?:ご参加|お迎え|ご案内|ご就業|ご入社|ご紹介|お進み)いただ(?:け(?:ない|ませ|ず)|"
         r"くことが?(?:でき|かな)(?:ない|ませ|ず|わ)|くことはかな(?:わ|いませ)|く(?:運び|こと)"
         r"(?:と|に)は?(?:なら|なりませ))"),
    _cue("採用いたしかねる", "rejection", 3,
         r"(?:採用|内定|ご案内|ご縁|お受け|お迎え).{0,8}(?:いたしかね|できかね|かねる|"
         r"することが?でき(?:ず|な|ませ))"),
    _cue("残念な結果", "rejection", 3,
         r"(?:残念な|不本意な|厳しい)(?:ご)?結果|(?:期待|希望|貴意|意向)に(?:は)?(?:お)?沿(?:えない|"
         r"いかねる|いかねます|えかねる|わない)結果|(?:期待|希望)に沿える結果(?:と|に)は(?:なら|な"
         r"りませ)"),
    _cue("we regret to inform", "rejection", 3,
         r"regret to (?:inform|let you know|tell)|"
         r"(?:decided|chosen|determined|opted) (?:not to|to not) "
         r"(?:proceed|move forward|pursue|offer|continue|progress|advance|invite)|"
         r"(?:move|moving|proceed|proceeding|go|going|continue|continuing) forward with "
         r"(?:other|another|a different|different|the other) (?:candidate|applicant)s?|"
         r"(?:pursue|pursuing|proceed with|proceeding with|go with|going with|select(?:ed)?|"
         r"chose|chosen) (?:other|another|a different|a more suitable) "
         r"(?:candidate|applicant)s?|"
         r"(?:will|shall|would|are|is) not be (?:proceeding|moving forward|progressing|offering|"
         r"inviting|taking your application|able to offer|advancing)|"
         r"not (?:to )?(?:proceed|move forward|progress|continue|advance) with your "
         r"(?:application|candidacy)|(?:unable|not able) to (?:offer|extend|move forward)|"
         r"(?:have|has)? ?not been (?:selected|successful|shortlisted|chosen)|"
         r"\bunsuccessful\b|position has (?:now )?been filled|"
         r"(?:filled|closed) (?:the|this) (?:position|role|vacancy)",
         "subject", "body"),
    # -- the words that go with one -----------------------------------------------------------
    _cue("残念ながら", "regret", 1,
         r"残念|心苦し|不本意|申し訳(?:ござい|あり)ませんが|恐縮(?:ではござい|です|なが)|"
         r"\bunfortunately\b|\bregret\b|\bsorry\b"),
    _cue("ご活躍をお祈り", "regret", 1,
         r"(?:ご活躍|ご健勝|ご多幸|ご発展|ご健闘).{0,15}(?:お祈り|祈念|祈って|願って|祈り)|"
         r"wish you (?:the best|every success|all the best|success|luck|well)|"
         r"best of luck|best wishes (?:for|in) your"),
    _cue("書類の破棄", "regret", 1,
         r"書類.{0,25}(?:破棄|廃棄|返却|削除|処分|返送いたしかね)|"
         r"(?:documents|information|data) will be (?:deleted|destroyed|disposed)"),
    _cue("またの機会に", "regret", 1,
         r"またの機会|別の機会|今後(?:の)?(?:募集|機会).{0,12}(?:ご縁|ご応募)|再度のご応募|"
         r"future (?:opportunities|openings|positions|vacancies)"),
    # -- a selection result is given ----------------------------------------------------------
    _cue("選考結果", "notice", 1,
         r"選考結果|結果(?:の|について|に関して|のご連絡|のお知らせ|ご報告)|合否|面接(?:の)?結果|"
         r"ご応募(?:の件|について|に関して|いただいた件|の結果|への)|応募の件|書類選考|選考について|"
         r"application (?:status|result|update|outcome)|your application|"
         r"regarding your (?:application|candidacy)", "subject"),
    _cue("検討の結果", "notice", 1,
         r"選考(?:の)?結果|慎重(?:に|なる)?(?:選考|検討|審査|協議)|厳正(?:な|なる)(?:選考|審査)|"
         r"(?:検討|協議|審査)(?:を重ね|いたしました|させていただきました|した)(?:た)?結果|"
         r"社内で(?:検討|協議)|after (?:careful|thorough) (?:consideration|review)|"
         r"(?:carefully|thoroughly) (?:considered|reviewed)"),
    # -- what a rejection never says ----------------------------------------------------------
    _cue("選考通過", "counter", -6,
         r"通過|(?<!不)合格(?!者数)|(?:一次|二次|三次|書類|適性|web|筆記)(?:選考|面接|試験|テスト)"
         r"(?:の)?突破", "subject", "body", negated_is_rejection=True),
    _cue("内定", "counter", -6,
         r"内定(?!辞退)|採用(?:が|を|することに|することが|と)?(?:決定|決まり|させていただ"
         r"(?:く|き)こと|いたしたく|いたします)|(?:ご)?入社(?:日|手続|承諾|誓約|いただ|を心待ち|"
         r"の意思)|労働条件通知書|雇用契約書|"
         r"pleased to (?:offer|inform you that you|extend)|offer (?:you )?(?:the|a) "
         r"(?:position|role|job)|\bcongratulations\b|job offer|offer letter|"
         r"welcome (?:you )?(?:to|aboard)", "subject", "body", negated_is_rejection=True),
    _cue("次の選考のご案内", "counter", -5,
         r"(?:二次|三次|四次|最終|次回|次の|次|本)(?:面接|選考|ステップ|試験|ステージ|面談|"
         r"段階).{0,20}(?:ご案内(?:いたします|します|です|させて|を(?:お送り|いたし|させ))|"
         r"お進み(?:ください|いただ(?:け|き|く))|進んで(?:いただ(?:け|き|く)|ください)|"
         r"進め(?:させ|ていただ)|お越し(?:くださ|いただけ(?:ます|ますよう|れば))|"
         r"ご参加(?:くださ|いただけ(?:ます|ますよう|れば))|日程(?:を|の)?(?:調整|ご連絡|お知らせ|"
         r"候補)|実施いたします|ご予約)|"
         r"(?:next|second|final|third) (?:round|interview|stage|step).{0,40}"
         r"(?:invite|schedule|availability|would like|arrange|please)|"
         r"(?:invite|invitation) (?:you )?(?:to|for) (?:an?|the) "
         r"(?:interview|next|second|final)", "body", negated_is_rejection=True),
    _cue("参加決定", "counter", -6,
         r"(?:ご参加|ご入社|ご就業|ご採用|ご登録|ご就労)(?:いただけること|いただくこと|が)(?:が|に)?"
         r"(?:決定|決まり)|ぜひ.{0,15}(?:お願いしたい|お迎えしたい|来ていただきたい)",
         "subject", "body"),
    _cue("選考を進めたい", "counter", -5,
         r"選考を(?:進めさせて|進めて)いただきたい|ぜひ.{0,20}選考(?:を|に)"),
    _cue("満席", "counter", -5, r"満席|(?:日程|枠|回|時間帯)は?(?:すでに)?埋まって|"
         r"fully booked", "subject", "body"),
    _cue("日程調整", "counter", -4,
         r"日程(?:の)?(?:調整|候補|ご連絡|ご都合)|候補日|ご都合(?:の)?(?:よい|良い|いかが|の"
         r"ほど)|面接(?:の)?日時|ご来社(?:くださ|いただけ|の際|される)|"
         r"(?:zoom|teams|google meet)(?:の)?(?:url|リンク|ミーティング)|"
         r"\bavailability\b|time slots?", "subject", "body"),
    _cue("延期・中止", "counter", -4,
         r"延期|日程変更|振替|振り替え|台風|天候|中止|rescheduled?|postpone",
         "subject", "body"),
    _cue("辞退を承り", "counter", -6,
         r"辞退.{0,20}(?:承|かしこまり|受け付け|受理|確認いたしました|確認しました|了解|"
         r"承知|拝受|拝承)|ご辞退の(?:旨|ご連絡|申し出|件)|"
         r"辞退(?:の)?(?:ご連絡|お申し出|申し出|旨|件|ご意向)(?:を|について)?(?:いただ|承|拝受|"
         r"受け|確認)|(?:ご決断|ご判断|ご意向|ご意思)を尊重|"
         r"(?:your|the) (?:decision to )?withdraw(?:al)?", "subject", "body"),
    _cue("結果待ち", "counter", -4,
         r"(?:今しばらく|いましばらく|もうしばらく|しばらく)(?:の間)?(?:、)?お待ち|"
         r"(?:改めて|後日|追って|近日中に|来週中に|日を改めて|までに)(?:、)?(?:選考)?結果(?:を|は|に"
         r"つきましては)?.{0,6}(?:ご連絡|お知らせ|ご案内)|選考中|検討中|保留|"
         r"still (?:reviewing|under review|being reviewed)|get back to you"),
    _cue("書類のご提出", "counter", -3,
         r"(?:ご提出|ご送付|ご返送|お送り|ご持参)(?:ください|いただけ|をお願い|いただきますよう"
         r"|くださいますよう)|提出期限"),
    _cue("転送", "counter", -6, r"^(?:re[:：]\s*)*(?:fw|fwd|転送)\s*[:：]", "subject"),
    _cue("合否にかかわらず", "counter", -3,
         r"(?:合否|結果)(?:に)?(?:かかわらず|関わらず|に関わらず|を問わず)|"
         r"regardless of the (?:outcome|result)"),
)
