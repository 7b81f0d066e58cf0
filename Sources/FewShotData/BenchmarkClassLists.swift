// The class lists of the two few-shot benchmarks built on CIFAR-100, carried by
// the product so that no split file has to be found at run time. Each entry is
// a CIFAR-100 fine class: its label (its line number - 1 in fine_label_names.txt)
// and its name. Loading checks every pair against the dataset's own names.

/// CIFAR-FS (Bertinetto et al., ICLR 2019): 64 train, 16 validation and
/// 20 test fine classes chosen at random.
enum CIFARFSClasses {
    static let train: [(Int, String)] = [
        (0, "apple"), (1, "aquarium_fish"), (3, "bear"), (6, "bee"),
        (9, "bottle"), (10, "bowl"), (11, "boy"), (12, "bridge"),
        (13, "bus"), (16, "can"), (17, "castle"), (18, "caterpillar"),
        (20, "chair"), (22, "clock"), (23, "cloud"), (24, "cockroach"),
        (25, "couch"), (28, "cup"), (29, "dinosaur"), (30, "dolphin"),
        (31, "elephant"), (33, "forest"), (35, "girl"), (36, "hamster"),
        (37, "house"), (38, "kangaroo"), (39, "keyboard"), (41, "lawn_mower"),
        (43, "lion"), (44, "lizard"), (45, "lobster"), (49, "mountain"),
        (50, "mouse"), (51, "mushroom"), (52, "oak_tree"), (53, "orange"),
        (54, "orchid"), (56, "palm_tree"), (57, "pear"), (59, "pine_tree"),
        (61, "plate"), (63, "porcupine"), (64, "possum"), (65, "rabbit"),
        (66, "raccoon"), (67, "ray"), (68, "road"), (72, "seal"),
        (74, "shrew"), (75, "skunk"), (76, "skyscraper"), (78, "snake"),
        (79, "spider"), (80, "squirrel"), (81, "streetcar"), (82, "sunflower"),
        (85, "tank"), (88, "tiger"), (90, "train"), (91, "trout"),
        (92, "tulip"), (93, "turtle"), (96, "willow_tree"), (97, "wolf")
    ]
    static let validation: [(Int, String)] = [
        (4, "beaver"), (7, "beetle"), (14, "butterfly"), (15, "camel"),
        (19, "cattle"), (26, "crab"), (27, "crocodile"), (32, "flatfish"),
        (40, "lamp"), (47, "maple_tree"), (48, "motorcycle"), (55, "otter"),
        (71, "sea"), (73, "shark"), (87, "television"), (89, "tractor")
    ]
    static let test: [(Int, String)] = [
        (2, "baby"), (5, "bed"), (8, "bicycle"), (21, "chimpanzee"),
        (34, "fox"), (42, "leopard"), (46, "man"), (58, "pickup_truck"),
        (60, "plain"), (62, "poppy"), (69, "rocket"), (70, "rose"),
        (77, "snail"), (83, "sweet_pepper"), (84, "table"), (86, "telephone"),
        (94, "wardrobe"), (95, "whale"), (98, "woman"), (99, "worm")
    ]
}

/// FC100 (Oreshkin et al., NeurIPS 2018): split by CIFAR-100 superclass into
/// 12 train, 4 validation and 4 test superclasses (60, 20 and 20 fine classes),
/// so that test classes are semantically far from the training classes.
enum FC100Classes {
    static let trainSuperclasses: [(Int, String)] = [
        (1, "fish"), (2, "flowers"), (3, "food_containers"), (4, "fruit_and_vegetables"),
        (5, "household_electrical_devices"), (6, "household_furniture"), (9, "large_man-made_outdoor_things"), (10, "large_natural_outdoor_scenes"),
        (15, "reptiles"), (17, "trees"), (18, "vehicles_1"), (19, "vehicles_2")
    ]
    static let validationSuperclasses: [(Int, String)] = [
        (8, "large_carnivores"), (11, "large_omnivores_and_herbivores"), (13, "non-insect_invertebrates"), (16, "small_mammals")
    ]
    static let testSuperclasses: [(Int, String)] = [
        (0, "aquatic_mammals"), (7, "insects"), (12, "medium_mammals"), (14, "people")
    ]
    static let train: [(Int, String)] = [
        (0, "apple"), (1, "aquarium_fish"), (5, "bed"), (8, "bicycle"),
        (9, "bottle"), (10, "bowl"), (12, "bridge"), (13, "bus"),
        (16, "can"), (17, "castle"), (20, "chair"), (22, "clock"),
        (23, "cloud"), (25, "couch"), (27, "crocodile"), (28, "cup"),
        (29, "dinosaur"), (32, "flatfish"), (33, "forest"), (37, "house"),
        (39, "keyboard"), (40, "lamp"), (41, "lawn_mower"), (44, "lizard"),
        (47, "maple_tree"), (48, "motorcycle"), (49, "mountain"), (51, "mushroom"),
        (52, "oak_tree"), (53, "orange"), (54, "orchid"), (56, "palm_tree"),
        (57, "pear"), (58, "pickup_truck"), (59, "pine_tree"), (60, "plain"),
        (61, "plate"), (62, "poppy"), (67, "ray"), (68, "road"),
        (69, "rocket"), (70, "rose"), (71, "sea"), (73, "shark"),
        (76, "skyscraper"), (78, "snake"), (81, "streetcar"), (82, "sunflower"),
        (83, "sweet_pepper"), (84, "table"), (85, "tank"), (86, "telephone"),
        (87, "television"), (89, "tractor"), (90, "train"), (91, "trout"),
        (92, "tulip"), (93, "turtle"), (94, "wardrobe"), (96, "willow_tree")
    ]
    static let validation: [(Int, String)] = [
        (3, "bear"), (15, "camel"), (19, "cattle"), (21, "chimpanzee"),
        (26, "crab"), (31, "elephant"), (36, "hamster"), (38, "kangaroo"),
        (42, "leopard"), (43, "lion"), (45, "lobster"), (50, "mouse"),
        (65, "rabbit"), (74, "shrew"), (77, "snail"), (79, "spider"),
        (80, "squirrel"), (88, "tiger"), (97, "wolf"), (99, "worm")
    ]
    static let test: [(Int, String)] = [
        (2, "baby"), (4, "beaver"), (6, "bee"), (7, "beetle"),
        (11, "boy"), (14, "butterfly"), (18, "caterpillar"), (24, "cockroach"),
        (30, "dolphin"), (34, "fox"), (35, "girl"), (46, "man"),
        (55, "otter"), (63, "porcupine"), (64, "possum"), (66, "raccoon"),
        (72, "seal"), (75, "skunk"), (95, "whale"), (98, "woman")
    ]
}

/// The CIFAR-100 superclass (coarse label) of each fine class, indexed by fine label.
enum CIFAR100Hierarchy {
    static let coarseLabelOfFine: [Int] = [
        4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
        6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
        5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
        10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
        16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13
    ]
}
