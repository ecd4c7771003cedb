"""The in-memory IR: loading ONNX into onnx-graphsurgeon graphs, ordering, small edits, MAC counts,
node annotations and op facts. Imports nothing else of the compiler but `rewriter.errors`."""
