// Tests for the EffTUI layer live in this folder, one file per source file under test.
