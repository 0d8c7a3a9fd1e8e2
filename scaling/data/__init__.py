"""The data side of a run: text becomes the exact training rows.

- `tokenizer`: the tokenizers (word over the world's vocabulary, byte, SentencePiece, Hugging
  Face), saved with a run; `vocab`: the run's tokenizer (`build_tokenizer`) and the text a
  subword model is trained on (`tokenizer_texts`).
- `datasets`: the world's pools as TFDS datasets keyed by the world version and its data
  version (`DATA_VERSIONS`, `data_version`), tokenized once into `Pool`s; TFDS catalog corpora.
- `corpora`: your own files streamed into memory-mapped `Pool`s.
- `scenarios`: eval scenario files (your own and the literature's formats), with the letter
  wordings (letter_wordings.json, package data here).
- `mixture`: which pool every training row comes from (the dose), and exact token accounting.
- `export`: the exact training rows of a run, rebuilt from its config.

The world that writes the text is scaling.world; nothing here knows models or training loops.
"""
