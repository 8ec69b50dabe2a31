"""Security and truth promises: each test here reproduces an attack or a false claim that
keyscan must refuse (see the README's promises). A test that cannot fail is a defect."""
