from rnnlab.data.tokenizer import PAD, UNK, build_tokenizer, load_tokenizer

TEXTS = ["A great film.<br /><br />Loved it!", "An AWFUL film, hated it.", "great great film"]


def test_tokenizer_lowercases_and_drops_br_tags() -> None:
    tok = build_tokenizer(TEXTS, vocab_size=50)
    assert tok.encode("GREAT<br />Film").tokens == ["great", "film"]


def test_tokenizer_json_round_trip_gives_identical_ids() -> None:
    tok = build_tokenizer(TEXTS, vocab_size=50)
    again = load_tokenizer(tok.to_str())
    text = "A great, unseen film!"
    assert again.encode(text).ids == tok.encode(text).ids


# every token of TEXTS, lowercased, without the <br /> tags; counts: film 3, great 3, it 2, . 2
WORDS = {"a", "great", "film", ".", "loved", "it", "!", "an", "awful", ",", "hated"}


def test_pad_is_id_0_unk_is_id_1_and_every_seen_word_has_its_own_id() -> None:
    """Catches a vocabulary of just the special tokens (or one that drops words seen once, as
    min_frequency=2 would), which maps every word to <unk> and still passes an <unk> check."""
    tok = build_tokenizer(TEXTS, vocab_size=50)
    assert tok.get_vocab().keys() == {PAD, UNK, *WORDS}
    assert (tok.token_to_id(PAD), tok.token_to_id(UNK)) == (0, 1)
    assert tok.encode("zyzzyva").ids == [1]
    assert tok.encode("hated it").tokens == ["hated", "it"]
    assert 1 not in tok.encode("an awful film, loved it!").ids


def test_vocab_size_caps_the_vocabulary_at_the_commonest_words() -> None:
    """Catches a cap that keeps the wrong words (the first seen, or the rarest) or counts the
    special tokens out of vocab_size."""
    tok = build_tokenizer(TEXTS, vocab_size=6)
    assert tok.get_vocab().keys() == {PAD, UNK, "film", "great", "it", "."}
    assert tok.encode("great loved film").tokens == ["great", UNK, "film"]


def test_no_vocab_size_keeps_every_word_seen_min_frequency_times() -> None:
    """Catches a cap left in place (the trainer's own 30,000 default, or vocab_size itself) and a
    min_frequency that keeps words seen once or drops words seen exactly that often."""
    texts = ["a b c a b", "a d e f"]
    kept = build_tokenizer(texts, vocab_size=None, min_frequency=2)
    assert kept.get_vocab().keys() == {PAD, UNK, "a", "b"}
    every = build_tokenizer([" ".join(f"w{i}" for i in range(40_000))], vocab_size=None)
    assert every.get_vocab_size() == 40_002


def test_bpe_tokenizer_handles_unseen_words() -> None:
    tok = build_tokenizer(TEXTS * 20, vocab_size=60, kind="bpe")
    assert tok.encode("greatest").tokens


def test_dropping_punctuation_keeps_words_only_and_travels_in_the_json() -> None:
    tokenizer = build_tokenizer(["Great film!!! Loved it, really."], 50, punctuation="drop")
    assert tokenizer.encode("Great film!!! Loved it, really.").tokens == [
        "great",
        "film",
        "loved",
        "it",
        "really",
    ]
    again = load_tokenizer(tokenizer.to_str())
    assert again.encode("film, really!").tokens == ["film", "really"]
