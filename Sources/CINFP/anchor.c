// Empty: this target only exports include/infp.h to Swift.
