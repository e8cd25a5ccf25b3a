package dev.qdrift.cli;

import dev.qdrift.QdriftException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The qdrift command line: one subcommand per study. */
@Command(name = "qdrift", mixinStandardHelpOptions = true, version = Main.VERSION,
        description = "What did INT8 change that accuracy does not show? Quantized BERT encoders, measured.",
        subcommands = {VerifyCommand.class, TrainHeadCommand.class, EvalCommand.class, QuantizeEvalCommand.class, OutliersCommand.class, DriftCommand.class, ReportCommand.class, BenchCommand.class, DemoCommand.class,
                CommandLine.HelpCommand.class})
public final class Main {
    /** What --version prints and what reports name as the tool that wrote them. */
    static final String VERSION = "qdrift 0.1.0";

    /** Exit code for bad input (a file, a flag, a shape): the message says what to fix. */
    static final int EXIT_BAD_INPUT = 2;
    /** Exit code when a check ran and failed (e.g. verify above tolerance). */
    static final int EXIT_CHECK_FAILED = 1;

    public static void main(String[] args) {
        System.exit(run(args));
    }

    public static int run(String... args) {
        CommandLine cli = new CommandLine(new Main());
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            if (e instanceof QdriftException) {
                cmd.getErr().println("qdrift: error: " + e.getMessage());
                return EXIT_BAD_INPUT;
            }
            throw e;
        });
        return cli.execute(args);
    }
}
