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


def test_pad_is_id_0_and_unknown_words_map_to_unk() -> None:
    tok = build_tokenizer(TEXTS, vocab_size=50)
    assert tok.token_to_id(PAD) == 0
    assert tok.encode("zyzzyva").ids == [tok.token_to_id(UNK)]


def test_vocab_size_caps_the_vocabulary() -> None:
    assert build_tokenizer(TEXTS, vocab_size=6).get_vocab_size() == 6


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
