// Public entry point of shared-mem/: the layout, the single writer (fpmd) and the reader.
export * from './layout';
export { ShmWriter, ShmFullError, type SweepCounts, type OpenWriterOptions } from './writer';
export * from './reader';
