// Tests for the EffLLM layer live in this folder, one file per source file under test.
