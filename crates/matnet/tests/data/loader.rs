//! Batching: sizes, order, seeded shuffles, normalisation values, shapes.

use matnet::Rng;
use matnet::data::loader::{MNIST_MEAN, MNIST_STD};
use matnet::data::{Batch, Dataset, DatasetKind, Normalize, batches, to_batch, to_tensors};

use crate::synthetic;

fn dataset(n: usize) -> Dataset {
    let (images, labels) = synthetic(n, 4, 3);
    Dataset::from_raw(DatasetKind::Mnist, images, labels, 4, 3).unwrap()
}

/// The dataset indices in a batch, read back from pixel 0 (which holds the index).
fn indices(b: &Batch) -> Vec<usize> {
    b.images
        .to_vec2()
        .iter()
        .map(|row| (row[0] * 255.0).round() as usize)
        .collect()
}

#[test]
fn sizes_with_partial_last_batch() {
    let ds = dataset(10);
    let sizes: Vec<usize> = batches(&ds, 4, Normalize::Unit, None)
        .map(|b| b.len())
        .collect();
    assert_eq!(sizes, [4, 4, 2]);
    for b in batches(&ds, 4, Normalize::Unit, None) {
        assert_eq!(b.images.dims(), [b.len(), 12]);
        assert_eq!(b.labels.dims(), [b.len()]);
    }
    assert_eq!(batches(&ds, 5, Normalize::Unit, None).count(), 2);
    assert_eq!(batches(&ds, 10, Normalize::Unit, None).count(), 1);
    assert_eq!(
        batches(&ds, 64, Normalize::Unit, None)
            .map(|b| b.len())
            .collect::<Vec<_>>(),
        [10]
    );
    assert_eq!(batches(&ds.take(0), 4, Normalize::Unit, None).count(), 0);
}

#[test]
#[should_panic(expected = "batches: batch_size must be at least 1")]
fn zero_batch_size_panics() {
    let ds = dataset(3);
    let _ = batches(&ds, 0, Normalize::Unit, None);
}

#[test]
fn unshuffled_is_dataset_order() {
    let ds = dataset(10);
    let mut seen = Vec::new();
    for b in batches(&ds, 3, Normalize::Unit, None) {
        let idx = indices(&b);
        let labels: Vec<f32> = idx.iter().map(|&i| ds.label(i) as f32).collect();
        assert_eq!(b.labels.to_vec(), labels);
        seen.extend(idx);
    }
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
}

#[test]
fn same_seed_same_order_and_every_image_once() {
    let ds = dataset(50);
    let epoch = |seed| -> Vec<usize> {
        let mut rng = Rng::new(seed);
        batches(&ds, 8, Normalize::Standard, Some(&mut rng))
            .flat_map(|b| {
                let b = Batch {
                    // Back to the unit scale to read the index out of pixel 0.
                    images: b.images.affine(MNIST_STD, MNIST_MEAN),
                    ..b
                };
                indices(&b)
            })
            .collect()
    };
    let a = epoch(7);
    assert_eq!(a, epoch(7));
    assert_ne!(a, epoch(8));
    assert_ne!(a, (0..50).collect::<Vec<_>>());
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    // Labels travel with their images.
    let mut rng = Rng::new(7);
    for b in batches(&ds, 8, Normalize::Unit, Some(&mut rng)) {
        let want: Vec<f32> = indices(&b).iter().map(|&i| ds.label(i) as f32).collect();
        assert_eq!(b.labels.to_vec(), want);
    }
}

#[test]
fn successive_epochs_from_one_generator_differ() {
    let ds = dataset(30);
    let mut rng = Rng::new(1);
    let e1: Vec<usize> = batches(&ds, 30, Normalize::Unit, Some(&mut rng))
        .flat_map(|b| indices(&b))
        .collect();
    let e2: Vec<usize> = batches(&ds, 30, Normalize::Unit, Some(&mut rng))
        .flat_map(|b| indices(&b))
        .collect();
    assert_ne!(e1, e2);
}

#[test]
fn normalisation_values() {
    let unit = Normalize::Unit.table();
    assert_eq!((unit[0], unit[255]), (0.0, 1.0));
    assert!((unit[51] - 0.2).abs() < 1e-7);
    let std = Normalize::Standard.table();
    for x in [0usize, 1, 128, 255] {
        let want = (x as f32 / 255.0 - 0.1307) / 0.3081;
        assert!((std[x] - want).abs() < 1e-6, "{x}: {} vs {want}", std[x]);
    }
    assert!((std[0] + 0.424_212_9).abs() < 1e-6);
    assert!((std[255] - 2.821_486_5).abs() < 1e-6);

    // Through a batch: every pixel is its table value.
    let ds = dataset(4);
    for norm in [Normalize::Unit, Normalize::Standard] {
        let t = norm.table();
        let b = batches(&ds, 4, norm, None).next().unwrap();
        let want: Vec<f32> = ds.images().iter().map(|&x| t[x as usize]).collect();
        assert_eq!(b.images.to_vec(), want);
    }
}

#[test]
fn nchw_view_and_full_tensors() {
    let ds = dataset(6);
    let b = batches(&ds, 4, Normalize::Unit, None).next().unwrap();
    let x = b.images_nchw();
    assert_eq!(x.dims(), [4, 1, 4, 3]);
    assert_eq!(x.to_vec(), b.images.to_vec());

    let (images, labels) = to_tensors(&ds, Normalize::Unit);
    assert_eq!(images.dims(), [6, 12]);
    assert_eq!(labels.to_vec(), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let all = batches(&ds, 6, Normalize::Unit, None).next().unwrap();
    assert_eq!(images.to_vec(), all.images.to_vec());
    assert_eq!(
        to_batch(&ds, Normalize::Unit).images_nchw().dims(),
        [6, 1, 4, 3]
    );
}
