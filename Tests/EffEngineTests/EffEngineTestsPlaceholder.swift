// Tests for the EffEngine layer live in this folder, one file per source file under test.
