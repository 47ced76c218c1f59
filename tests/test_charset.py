import string

import torch

from dld.data.charset import DEFAULT_CHARSET, CharsetEncoder, count_unencodable_words


def test_default_charset_is_printable_ascii():
    assert len(DEFAULT_CHARSET) == 95
    assert set(DEFAULT_CHARSET) == set(string.printable) - set("\t\n\r\x0b\x0c")
    assert CharsetEncoder().num_classes == 97


def test_round_trip():
    enc = CharsetEncoder(max_length=32)
    for word in ["Hello", "EXIT!", "don't", "a b", "~{}|\\", "x" * 32, "0123456789"]:
        ids = enc.encode(word)
        assert ids[-1] == CharsetEncoder.EOS and len(ids) == len(word) + 1
        assert enc.decode(ids) == word
    batch = enc.encode_batch(["ab", "XYZ"])
    assert batch.shape == (2, 33)
    assert enc.decode_batch(batch) == ["ab", "XYZ"]
    assert batch[0, 3:].eq(0).all()


def test_unencodable_words_get_padding_rows():
    enc = CharsetEncoder(max_length=5)
    assert enc.why_unencodable("toolong") == "too_long"
    assert enc.why_unencodable("café") == "unknown_char"
    assert enc.why_unencodable("") == "empty"
    assert enc.encode("café") is None
    batch = enc.encode_batch(["ok", "toolong", "café"])
    assert batch[0].ne(0).any() and batch[1:].eq(0).all()


def test_decode_without_end_token_keeps_last_character():
    enc = CharsetEncoder("abc", max_length=3)
    ids = [enc.encode("abc")[i] for i in range(3)]  # no [s] at all
    assert enc.decode(ids) == "abc"
    assert enc.decode([2, 3, CharsetEncoder.EOS, 4]) == "ab"


def test_custom_charset_and_duplicates():
    enc = CharsetEncoder("0123456789", max_length=4)
    assert enc.num_classes == 12
    assert enc.decode(enc.encode("2024")) == "2024"
    try:
        CharsetEncoder("aab")
    except ValueError as e:
        assert "'a'" in str(e)
    else:
        raise AssertionError("duplicate characters must be rejected")


def test_count_unencodable_words_logs_once(caplog):
    enc = CharsetEncoder(max_length=4)
    dicts = [
        {"annotations": [{"text": "good", "iscrowd": 0}, {"text": "toolong", "iscrowd": 0}]},
        {"annotations": [{"text": "é", "iscrowd": 0}, {"text": "###", "iscrowd": 1}]},
        {"annotations": []},
    ]
    with caplog.at_level("WARNING"):
        reasons = count_unencodable_words(dicts, enc, "toy")
    assert reasons == {"too_long": 1, "unknown_char": 1}
    assert sum("toy: 2 of 3 words" in r.message for r in caplog.records) == 1


def test_case_insensitive_encoder_reads_lower_case():
    enc = CharsetEncoder(max_length=8, case_sensitive=False)
    assert enc.num_classes == 97 - 26
    assert "A" not in enc.charset and "a" in enc.charset
    assert enc.encode("HeLLo") == enc.encode("hello")
    assert enc.decode(enc.encode("HeLLo")) == "hello"
    assert enc.why_unencodable("ÄB") == "unknown_char"
    assert CharsetEncoder(max_length=8).decode(CharsetEncoder(max_length=8).encode("HeLLo")) == "HeLLo"
