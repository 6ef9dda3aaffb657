// Tests for the EffDiffusion layer live in this folder, one file per source file under test.
