"""Write the small generated text corpus `jobs/data/corpus/` that text specs and tests use.

Sentences from a tiny grammar about the seed's deep-learning concepts: enough structure
for a character-level language model to learn in a few epochs, and no download. Point
`data.path` at your own text files for real work. Run: python jobs/data/make_corpus.py
"""

from __future__ import annotations

import random
from pathlib import Path

SUBJECTS = ["the network", "a neuron", "the lstm", "the gru", "a small cnn", "the generator",
            "the discriminator", "the optimizer", "each layer", "the model"]
VERBS = ["learns", "updates", "forgets", "remembers", "predicts", "pools", "normalizes",
         "regularizes", "initializes", "transfers"]
OBJECTS = ["the weights", "its biases", "the gradient", "a sequence", "the next token",
           "every feature", "the hidden state", "a batch", "the learning rate", "the loss"]
ENDINGS = ["with dropout", "after each epoch", "before the gradient explodes",
           "when the loss plateaus", "with batch normalization", "under an l2 penalty",
           "from a pretrained backbone", "until early stopping", "with xavier init",
           "in one step"]


def sentence(rng: random.Random) -> str:
    words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)]
    if rng.random() < 0.7:
        words.append(rng.choice(ENDINGS))
    return " ".join(words) + "."


def main(folder: Path = Path(__file__).parent / "corpus", files: int = 3,
         sentences: int = 400) -> None:
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(files):
        lines = [sentence(rng) for _ in range(sentences)]
        (folder / f"part-{index}.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
