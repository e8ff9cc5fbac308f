"""Rules applied inside one store transaction: pure functions of a MetaTxn."""
