// Public entry point of fastpath/: the graph, vectors, the packet I/O interface and the in-memory I/O.
export { Graph, type GraphOptions } from './graph';
export { VEC, Vector, createVector, vpush, vmove } from './vector';
export type { PacketIo } from './io';
export { MemIo, type MemIoOptions } from './mem-io';
export { FibResolver, FOUND } from './fib';
