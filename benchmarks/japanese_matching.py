"""Japanese text matching for openings: SQLite FTS5 `trigram` beside two morphological analysers
(SudachiPy + sudachidict_core, fugashi + unidic-lite), on a few hundred constructed careers.

    .venv/bin/python benchmarks/japanese_matching.py [--people 300] [--seed 7]

Each person has a career line and a desired role written in one of several ways (営業 / 法人営業 /
セールス, 経理 / 経理事務 …); each query is an opening's title and description for one role
family. A person is relevant to a query when they are of its family. For each method: how many
of the top 10 are relevant (precision@10, mean over queries), the share of queries whose
relevant people are found at all (recall@50) and the time to analyse every text and answer every
query. Measured figures are in benchmarks/README.md and docs/reference.md ("openings").
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import time
import unicodedata
from collections.abc import Callable

FAMILIES: dict[str, tuple[list[str], str]] = {
    "java": (["Javaエンジニア", "Java開発", "サーバーサイドエンジニア(Java)", "JAVAプログラマー",
              "Spring BootでのWebアプリ開発"],
             "Javaエンジニア 自社サービスのサーバーサイド開発 Spring Boot"),
    "sales": (["営業", "法人営業", "営業職", "ルート営業", "新規開拓の営業"],
              "法人営業 既存顧客への提案営業"),
    "accounting": (["経理", "経理事務", "経理・財務", "会計事務", "月次決算の経理"],
                   "経理スタッフ 月次決算 経理業務全般"),
    "hr": (["人事", "人事労務", "採用担当", "人事・総務", "労務管理"],
           "人事担当 採用と労務"),
    "driver": (["配送ドライバー", "運転手", "トラック運転", "ドライバー", "配送業務"],
               "配送ドライバー 普通免許 ルート配送"),
    "nurse": (["看護師", "病棟看護", "訪問看護", "看護職", "准看護師"],
              "看護師 病棟勤務 夜勤あり"),
}
FILLERS = ["として5年勤務", "の経験があります", "を担当していました", "に従事", "をしておりました",
           "で3年の実務経験", ""]
COMPANIES = ["株式会社サンプル", "東京商事", "大阪物流", "みなと病院", "テックソリューションズ"]


def people(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        family = rng.choice(list(FAMILIES))
        phrases = FAMILIES[family][0]
        career = f"{rng.choice(COMPANIES)}にて{rng.choice(phrases)}{rng.choice(FILLERS)}"
        out.append((family, f"{career} 希望職種: {rng.choice(phrases)}"))
    return out


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def fts_trigram(texts: list[str], queries: list[str]) -> list[list[int]]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='trigram')")
    db.executemany("INSERT INTO t(rowid, body) VALUES (?, ?)",
                   [(i, fold(t)) for i, t in enumerate(texts)])
    answers = []
    for query in queries:
        words = [w for w in fold(query).split() if len(w) >= 3]  # trigram: 3 characters or more
        grams = {w[i:i + 3] for w in words for i in range(len(w) - 2)}
        if not grams:
            answers.append([])
            continue
        match = " OR ".join('"' + g.replace('"', '""') + '"' for g in sorted(grams))
        rows = db.execute("SELECT rowid FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT 50",
                          (match,)).fetchall()
        answers.append([r[0] for r in rows])
    return answers


def by_terms(analyse: Callable[[str], set[str]]) -> Callable[[list[str], list[str]],
                                                             list[list[int]]]:
    def rank(texts: list[str], queries: list[str]) -> list[list[int]]:
        bags = [analyse(t) for t in texts]
        answers = []
        for query in queries:
            want = analyse(query)
            scored = sorted(((len(want & bag) / (len(want) or 1), -i) for i, bag in
                             enumerate(bags)), reverse=True)
            answers.append([-i for s, i in scored[:50] if s > 0])
        return answers
    return rank


def sudachi() -> Callable[[str], set[str]]:
    from sudachipy import Dictionary, SplitMode

    tokenizer = Dictionary().tokenizer()

    def analyse(text: str) -> set[str]:
        return {m.normalized_form().casefold() for m in tokenizer.tokenize(fold(text), SplitMode.A)
                if (m.part_of_speech()[0] in ("名詞", "動詞") and len(m.surface()) > 1)
                or (m.part_of_speech()[0] == "名詞" and m.surface().isascii())}
    return analyse


def fugashi_unidic() -> Callable[[str], set[str]]:
    import fugashi

    tagger = fugashi.Tagger()

    def analyse(text: str) -> set[str]:
        out = set()
        for word in tagger(fold(text)):
            if (word.feature.pos1 in ("名詞", "動詞") and len(word.surface) > 1) or (
                    word.feature.pos1 == "名詞" and word.surface.isascii()):
                out.add(str(word.feature.lemma or word.surface).casefold())
        return out
    return analyse


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    pool = people(args.people, args.seed)
    texts = [t for _f, t in pool]
    families = list(FAMILIES)
    queries = [FAMILIES[f][1] for f in families]
    methods: dict[str, Callable[[], Callable[[list[str], list[str]], list[list[int]]]]] = {
        "FTS5 trigram": lambda: fts_trigram,
        "SudachiPy (core, mode A)": lambda: by_terms(sudachi()),
        "fugashi + unidic-lite": lambda: by_terms(fugashi_unidic()),
    }
    print(f"{len(texts)} careers, {len(queries)} openings")
    print("| method | precision@10 | recall@50 | load s | analyse+query ms |")
    print("|---|---:|---:|---:|---:|")
    for name, make in methods.items():
        t0 = time.perf_counter()
        rank = make()
        t1 = time.perf_counter()
        answers = rank(texts, queries)
        t2 = time.perf_counter()
        p10, r50 = [], []
        for family, found in zip(families, answers, strict=True):
            relevant = {i for i, (f, _t) in enumerate(pool) if f == family}
            p10.append(sum(1 for i in found[:10] if i in relevant) / 10)
            r50.append(len(relevant & set(found[:50])) / min(50, len(relevant)))
        print(f"| {name} | {sum(p10) / len(p10):.2f} | {sum(r50) / len(r50):.2f} | "
              f"{t1 - t0:.2f} | {(t2 - t1) * 1000:.0f} |")
        for family, p in zip(families, p10, strict=True):
            if p < 1:
                print(f"    {family}: precision@10 {p:.1f}")


if __name__ == "__main__":
    main()
