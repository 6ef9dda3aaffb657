// Tests for the EffCore layer live in this folder, one file per source file under test.
