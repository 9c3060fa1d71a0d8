"""Batch codes: typable, self-checking, and signed in QR URLs."""

from collections import Counter

from wastetrack.core import codes

SECRET = "s" * 40


def test_new_codes_carry_a_valid_check_character() -> None:
    for _ in range(200):
        assert codes.is_valid_code(codes.new_code())


def test_new_codes_use_every_symbol_alike() -> None:
    """Each symbol is five random bits (the alphabet has 32): over 3,200 codes every symbol
    comes about 800 times, none outside 600–1,000 (a bias of a few symbols, such as a byte
    taken modulo another length, would show)."""
    assert len(codes.ALPHABET) == 32
    seen = Counter(symbol for _ in range(3200) for symbol in codes.new_code()[:-1])
    assert set(seen) == set(codes.ALPHABET)
    assert all(600 <= n <= 1000 for n in seen.values()), seen


def test_every_single_character_typo_is_caught() -> None:
    code = codes.new_code()
    for position in range(len(code)):
        for char in codes.ALPHABET:
            if char != code[position]:
                typo = code[:position] + char + code[position + 1 :]
                assert not codes.is_valid_code(typo), typo


def test_typed_code_is_normalised() -> None:
    code = "R98H0PN9Q"
    assert codes.code_from_scan(" r98h-opn9-q ", secret=SECRET) == code


def test_signed_url_round_trips() -> None:
    code = codes.new_code()
    url = codes.qr_url(code, base_url="https://wt.example/", secret=SECRET)
    assert url.startswith("https://wt.example/q/")
    assert codes.code_from_scan(url, secret=SECRET) == code


def test_forged_signature_is_refused() -> None:
    code = codes.new_code()
    url = codes.qr_url(code, base_url="https://wt.example", secret="another-secret" * 3)
    assert codes.code_from_scan(url, secret=SECRET) is None


def test_url_with_a_changed_code_is_refused() -> None:
    first, second = codes.new_code(), codes.new_code()
    url = codes.qr_url(first, base_url="https://wt.example", secret=SECRET)
    assert codes.code_from_scan(url.replace(first, second), secret=SECRET) is None
