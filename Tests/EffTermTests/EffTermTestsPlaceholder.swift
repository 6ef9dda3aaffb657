// Tests for the EffTerm layer live in this folder, one file per source file under test.
