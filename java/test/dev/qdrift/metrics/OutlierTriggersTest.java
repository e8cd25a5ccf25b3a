package dev.qdrift.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class OutlierTriggersTest {

    @Test
    void tokenCategories() {
        assertEquals(OutlierTokenCategory.CLS, OutlierTokenCategory.of("[CLS]"));
        assertEquals(OutlierTokenCategory.SEP, OutlierTokenCategory.of("[SEP]"));
        assertEquals(OutlierTokenCategory.PUNCTUATION, OutlierTokenCategory.of("."));
        assertEquals(OutlierTokenCategory.PUNCTUATION, OutlierTokenCategory.of("'"));
        assertEquals(OutlierTokenCategory.PUNCTUATION, OutlierTokenCategory.of("##-"));
        assertEquals(OutlierTokenCategory.STOPWORD, OutlierTokenCategory.of("the"));
        assertEquals(OutlierTokenCategory.STOPWORD, OutlierTokenCategory.of("The"));
        assertEquals(OutlierTokenCategory.OTHER, OutlierTokenCategory.of("##the"));   // a word piece, not the word
        assertEquals(OutlierTokenCategory.OTHER, OutlierTokenCategory.of("journey"));
        assertEquals(OutlierTokenCategory.OTHER, OutlierTokenCategory.of("[UNK]"));
        assertEquals(OutlierTokenCategory.OTHER, OutlierTokenCategory.of("1999"));
    }

    @Test
    void countsHitsPerTokenInputAndCategorySkippingPadding() {
        // Two inputs padded to 4 tokens, 3 channels; follow channels 0 and 2 with threshold 5.
        //   input 0: [CLS] the cat [SEP]          input 1: [CLS] . [SEP] <pad>
        String[][] tokens = {{"[CLS]", "the", "cat", "[SEP]"}, {"[CLS]", ".", "[SEP]"}};
        int[] mask = {1, 1, 1, 1, 1, 1, 1, 0};
        float[] x = {
            9, 0, 0,     // [CLS]: ch0 fires
            0, 0, -7,    // the: ch2 fires (|x|)
            0, 0, 5,     // cat: 5 is not > 5
            6, 0, 0,     // [SEP]: ch0 fires
            0, 9, 0,     // [CLS]: only ch1, not followed
            0, 0, 0,     // .
            8, 0, 0,     // [SEP]: ch0 fires
            99, 99, 99,  // padding: ignored
        };
        OutlierTriggers t = new OutlierTriggers(new int[] {0, 2}, 5);
        t.add(x, 3, 2, 4, mask, tokens);
        assertEquals(7, t.tokens());
        assertEquals(2, t.inputs());
        assertEquals(3, t.tokenHits(0));
        assertEquals(3.0 / 7, t.tokenRate(0), 1e-15);
        assertEquals(2, t.inputHits(0));
        assertEquals(1.0, t.inputRate(0));
        assertEquals(1, t.tokenHits(1));
        assertEquals(1, t.inputHits(1));
        assertEquals(0.5, t.inputRate(1));
        assertEquals(1, t.categoryHits(0, OutlierTokenCategory.CLS));
        assertEquals(2, t.categoryHits(0, OutlierTokenCategory.SEP));
        assertEquals(0, t.categoryHits(0, OutlierTokenCategory.PUNCTUATION));
        assertEquals(1, t.categoryHits(1, OutlierTokenCategory.STOPWORD));
    }
}
