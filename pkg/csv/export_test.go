package csv

// IndexByteForTest exposes indexByte to the tests.
var IndexByteForTest = indexByte
